"""The published test vectors: RFC 4226 Appendix D (HOTP) and RFC 6238 Appendix B (TOTP, SHA-1/256/512),
checked against pyotp (which issues bankq's codes) and against the RFCs' algorithm written out here."""

from __future__ import annotations

import base64
import hashlib
import hmac
import string
import struct
from collections import Counter

import pyotp
import pytest

from core import otp
from core.settings import Settings

RFC4226_SECRET = b"12345678901234567890"
RFC4226_HOTP = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"]

# RFC 6238 uses a different seed per hash: the ASCII digits repeated to the hash's block-ish key length.
SEEDS = {
    "sha1": b"12345678901234567890",
    "sha256": b"12345678901234567890123456789012",
    "sha512": b"1234567890123456789012345678901234567890123456789012345678901234",
}
RFC6238_TOTP = [  # (unix time, SHA-1, SHA-256, SHA-512), 8 digits, 30-second steps, T0 = 0
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]


def b32(secret: bytes) -> str:
    return base64.b32encode(secret).decode()


def reference_hotp(key: bytes, counter: int, digits: int, digest: str) -> str:
    """RFC 4226 section 5.3, written out: HMAC, dynamic truncation, modulo 10^digits."""
    mac = hmac.new(key, struct.pack(">Q", counter), digest).digest()
    offset = mac[-1] & 0x0F
    binary = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(binary % 10**digits).zfill(digits)


@pytest.mark.parametrize("counter,expected", list(enumerate(RFC4226_HOTP)))
def test_hotp_rfc4226_appendix_d(counter: int, expected: str) -> None:
    assert pyotp.HOTP(b32(RFC4226_SECRET)).at(counter) == expected
    assert reference_hotp(RFC4226_SECRET, counter, 6, "sha1") == expected


@pytest.mark.parametrize("row", RFC6238_TOTP, ids=lambda r: str(r[0]))
@pytest.mark.parametrize("column,digest", [(1, "sha1"), (2, "sha256"), (3, "sha512")])
def test_totp_rfc6238_appendix_b(row: tuple[int, str, str, str], column: int, digest: str) -> None:
    when, expected = row[0], row[column]
    totp = pyotp.TOTP(b32(SEEDS[digest]), digits=8, digest=getattr(hashlib, digest), interval=30)
    assert totp.at(when) == expected
    assert reference_hotp(SEEDS[digest], when // 30, 8, digest) == expected
    assert totp.verify(expected, for_time=when)
    assert not totp.verify(expected, for_time=when + 30 * 2)


def test_issued_codes_are_six_random_digits() -> None:
    codes = [otp.new_code() for _ in range(3000)]
    assert all(len(c) == 6 and set(c) <= set(string.digits) for c in codes)
    assert len(set(codes)) > 2900  # 3000 draws from a million values: a handful of collisions at most
    first_digits = Counter(c[0] for c in codes)
    assert set(first_digits) == set(string.digits)
    assert max(first_digits.values()) < 3000 * 0.15  # roughly uniform, not stuck


def test_stored_hash_is_a_peppered_hmac_bound_to_the_code_id() -> None:
    base = Settings.from_env({"BANKQ_SECRET_KEY": "k" * 40, "BANKQ_DATA_DIR": "/tmp/bankq-otp-unit"})
    peppered = Settings.from_env(
        {**{"BANKQ_SECRET_KEY": "k" * 40, "BANKQ_DATA_DIR": "/tmp/bankq-otp-unit"}, "BANKQ_OTP_PEPPER": "pepper"}
    )
    h = otp.code_hash(base, "id-1", "123456")
    assert len(h) == 64 and "123456" not in h
    assert h == otp.code_hash(base, "id-1", "123456")
    assert h != otp.code_hash(base, "id-2", "123456")  # the same code under another id hashes differently
    assert h != otp.code_hash(peppered, "id-1", "123456")
    assert h != hashlib.sha256(b"id-1:123456").hexdigest()  # keyed, not a bare hash
    assert otp.code_hash(peppered, "id-1", "123456") == hmac.new(b"pepper", b"id-1:123456", "sha256").hexdigest()
