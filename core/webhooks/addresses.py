"""Where a webhook may be sent: http(s) URLs whose host resolves only to public addresses.

Checked twice: when the endpoint is saved (the URL's form, and its host when that is a literal address) and at
every delivery, after resolving the name, against each address the name resolves to. The transport then connects
to the checked address itself, so a second DNS answer cannot steer the request elsewhere (DNS rebinding)."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from core.errors import ValidationFailed

MAX_URL = 2048
SCHEMES = {"http": 80, "https": 443}
# Cloud metadata services; all are non-global already, named here so a refusal says what it was.
METADATA = {ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "169.254.170.2")}
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(Exception):
    """The URL may not be called; the message says why, for the attempt's `error`."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as in the URL, IDNA-encoded: the Host header and the TLS server name
    port: int
    path: str  # path and query, as sent in the request line


def _invalid(reason: str) -> ValidationFailed:
    return ValidationFailed(f"Invalid webhook URL: {reason}.", code="invalid_url", errors={"url": [reason]})


def parse(url: str) -> Target:
    """The parts of a URL bankq can send to, or 422 invalid_url."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        raise _invalid(f"1-{MAX_URL} characters")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise _invalid("no spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
        host = (parts.hostname or "").encode("idna").decode("ascii")
    except (ValueError, UnicodeError):
        raise _invalid("not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise _invalid("only http and https URLs are allowed")
    if not host:
        raise _invalid("a host is required")
    if parts.username is not None or parts.password is not None:
        raise _invalid("credentials in the URL are not allowed")
    if parts.fragment:
        raise _invalid("no fragment")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme, host, port or SCHEMES[scheme], path)


def literal_address(host: str) -> IPAddress | None:
    """The address a host names by itself: dotted, bracketed IPv6, or the legacy forms (2130706433, 0x7f.1)
    that the resolver reads as addresses too."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def refusal(address: IPAddress) -> str | None:
    """Why bankq will not connect to this address, or None for a public one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA:
        return "a cloud metadata address"
    for name, flag in (("a loopback", address.is_loopback), ("a link-local", address.is_link_local),
                       ("a multicast", address.is_multicast), ("an unspecified", address.is_unspecified),
                       ("a private", address.is_private), ("a reserved", address.is_reserved)):
        if flag:
            return f"{name} address"
    if not address.is_global:
        return "a non-public address"
    return None


def check_url(url: str, *, allow_private: bool) -> str:
    """At creation: the URL's form, and its host when that is a literal address (names are checked at delivery)."""
    target = parse(url)
    if not allow_private:
        if target.host == "localhost" or target.host.endswith(".localhost"):
            raise _invalid("the host is a loopback name")
        address = literal_address(target.host)
        if address is not None and (why := refusal(address)):
            raise _invalid(f"the host is {why}")
    return url


def resolve(target: Target, *, allow_private: bool) -> str:
    """The one address to connect to. Every address the name has must be allowed: a name that also points
    inward is refused whole."""
    try:
        infos = socket.getaddrinfo(target.host.strip("[]"), target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise Refused(f"could not resolve {target.host}: {exc}") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses:
        raise Refused(f"{target.host} has no address")
    if not allow_private:
        for address in addresses:
            if why := refusal(address):
                raise Refused(f"refused: {target.host} resolves to {address}, {why}")
    return str(addresses[0])
