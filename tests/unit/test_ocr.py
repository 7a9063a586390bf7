"""Reading the MRZ of rendered documents with the real tesseract (installed by `make test`; never skipped).

Clean renders must read exactly. Degraded renders (scans and phone photos) may fail to verify, but a reading that
verifies must carry exactly the printed fields: a wrong name or number that passes is a false verification.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from PIL import Image

from core.kyc import mrz, ocr
from tests.documents import PEOPLE, Person, render_td1, render_td3, td1_lines, td3_lines

SLACK = 5.0  # seconds past the budget for decoding and the last tesseract run to return


def test_tesseract_is_installed() -> None:
    assert shutil.which("tesseract"), "tesseract is missing: `make test` installs it (apt-get install tesseract-ocr)"


def _card(person: Person) -> Person:
    return dataclasses.replace(person, document_code="I")


def _expected(lines: list[str]) -> mrz.Mrz:
    expected = mrz.parse(lines)
    assert expected.valid
    return expected


def _fields(found: mrz.Mrz) -> dict[str, Any]:
    """Everything a reading tells about the person and the document (the checks are compared by `valid`)."""
    return {field.name: getattr(found, field.name) for field in dataclasses.fields(found) if field.name != "checks"}


@pytest.mark.parametrize("person", PEOPLE, ids=lambda p: p.surname)
def test_a_clean_passport_reads_exactly(person: Person) -> None:
    reading = ocr.read_document(render_td3(person, seed=1))
    assert reading.mrz is not None, reading.text
    assert reading.mrz.valid, reading.mrz
    assert _fields(reading.mrz) == _fields(_expected(td3_lines(person)))
    assert reading.mrz.surname == person.surname.replace("-", " ") and reading.mrz.birth_date == person.birth_date
    assert reading.attempts >= 1 and reading.seconds < ocr.TIME_BUDGET


@pytest.mark.parametrize("person", PEOPLE, ids=lambda p: p.surname)
def test_a_clean_id_card_reads_exactly(person: Person) -> None:
    card = _card(person)
    reading = ocr.read_document(render_td1(card, seed=2))
    assert reading.mrz is not None, reading.text
    assert reading.mrz.valid, reading.mrz
    assert reading.mrz.format == "TD1"
    assert _fields(reading.mrz) == _fields(_expected(td1_lines(card)))


def test_a_file_path_reads_like_the_image(tmp_path: Any) -> None:
    path = tmp_path / "passport.jpg"
    render_td3(PEOPLE[0], seed=4).save(path, quality=90)
    reading = ocr.read_document(str(path))
    assert reading.mrz is not None and reading.mrz.valid
    assert reading.mrz.document_number == PEOPLE[0].document_number


# (name, TD3 or TD1, degradations): a representative subset of scans and phone photos, one render each.
DEGRADED: list[tuple[str, str, dict[str, float]]] = [
    ("jpeg q40", "td3", {"jpeg": 40}),
    ("blur 1.0", "td3", {"blur": 1.0}),
    ("noise 12", "td1", {"noise": 12}),
    ("uneven light", "td3", {"lighting": 0.6}),
    ("rotated 2.5", "td3", {"rotate": 2.5}),
    ("rotated -1.5", "td1", {"rotate": -1.5}),
    ("scale 0.6", "td3", {"scale": 0.6}),
    ("scale 1.5", "td1", {"scale": 1.5}),
    ("on a table", "td1", {"background": 0.6, "rotate": 1.0}),
    ("phone photo", "td3", {"background": 0.5, "rotate": -2.0, "lighting": 0.4, "blur": 0.8, "noise": 6, "jpeg": 60}),
]
DegradedReading = Callable[[str], tuple[ocr.Reading, list[str]]]


@pytest.fixture(scope="module")
def read_degraded() -> DegradedReading:
    """Each degraded render is read once per module, by whichever test needs it first: the share test below stands
    alone (any order, or on its own) and the file still runs tesseract once per render."""
    readings: dict[str, tuple[ocr.Reading, list[str]]] = {}

    def read(name: str) -> tuple[ocr.Reading, list[str]]:
        if name not in readings:
            index = [case[0] for case in DEGRADED].index(name)
            _, kind, degradations = DEGRADED[index]
            seed = 11 + index
            person = PEOPLE[seed % len(PEOPLE)]
            render: Callable[..., Image.Image]
            if kind == "td1":
                person, render, lines = _card(person), render_td1, td1_lines(_card(person))
            else:
                render, lines = render_td3, td3_lines(person)
            readings[name] = ocr.read_document(render(person, seed=seed, **degradations)), lines
        return readings[name]

    return read


def _verified(reading: ocr.Reading) -> bool:
    return reading.mrz is not None and reading.mrz.valid


@pytest.mark.parametrize("name", [case[0] for case in DEGRADED])
def test_a_degraded_render_verifies_exactly_or_not_at_all(name: str, read_degraded: DegradedReading) -> None:
    reading, lines = read_degraded(name)
    assert reading.seconds < ocr.TIME_BUDGET + SLACK
    if _verified(reading):
        assert reading.mrz is not None
        assert _fields(reading.mrz) == _fields(_expected(lines)), f"false verification: {reading.mrz.lines}"


def test_share_of_degraded_renders_read_fully_valid(
    read_degraded: DegradedReading, capsys: pytest.CaptureFixture[str]
) -> None:
    outcomes = {name: _verified(read_degraded(name)[0]) for name, _, _ in DEGRADED}
    share = sum(outcomes.values()) / len(outcomes)
    with capsys.disabled():
        failed = ", ".join(name for name, ok in outcomes.items() if not ok) or "none"
        print(f"\nOCR: {sum(outcomes.values())}/{len(outcomes)} degraded renders read fully valid ({share:.0%}); "
              f"not: {failed}")
    assert share >= 0.5


def test_a_valid_parse_read_from_one_crop_only_does_not_verify() -> None:
    """Names, country codes, nationality and sex have no check digit: one misread passes every check, so a
    verification needs a second crop that read them the same."""
    right = mrz.parse(td3_lines(PEOPLE[0]))
    first, second = td3_lines(PEOPLE[0])
    misread = mrz.parse([first.replace("ERIKSSON", "ERIKSDON"), second])
    assert misread.valid and misread.surname != right.surname

    found, _ = ocr._choose([ocr._Seen(misread, "", source=1), ocr._Seen(right, "", source=2)])
    assert found is not None and not found.valid and found.checks["corroborated"] is False
    found, _ = ocr._choose([ocr._Seen(right, "", source=1), ocr._Seen(right, "", source=1)])
    assert found is not None and not found.valid  # the same crop twice is no second opinion
    found, _ = ocr._choose([ocr._Seen(misread, "", source=1), ocr._Seen(right, "", 2), ocr._Seen(right, "", 3)])
    assert found == right


def _noise(shape: tuple[int, ...]) -> Image.Image:
    return Image.fromarray(np.random.default_rng(7).integers(0, 256, shape, dtype=np.uint8))


@pytest.mark.parametrize(
    "image",
    [
        pytest.param(lambda: Image.new("RGB", (1500, 1000), "white"), id="blank"),
        pytest.param(lambda: _noise((1000, 1500, 3)), id="noise"),
        pytest.param(lambda: _noise((150, 250)).resize((1500, 900)), id="blotchy noise"),
        pytest.param(lambda: Image.new("RGB", (10, 10), "white"), id="10x10"),
        pytest.param(lambda: Image.new("RGBA", (600, 400), (0, 0, 0, 0)), id="transparent"),
        pytest.param(lambda: Image.new("I;16", (500, 300), 1000), id="16-bit"),
    ],
)
def test_an_image_without_a_document_reads_nothing_quickly(image: Callable[[], Image.Image]) -> None:
    reading = ocr.read_document(image())
    assert reading.mrz is None
    assert reading.seconds < ocr.TIME_BUDGET + SLACK


def test_undecodable_bytes_read_nothing() -> None:
    reading = ocr.read_document(b"\x89PNG\r\n\x1a\n not really")
    assert reading.mrz is None and reading.attempts == 0


def test_a_hostile_image_is_bounded_by_the_budget() -> None:
    """Text-like noise keeps tesseract busy: the budget and the attempt cap still end the reading."""
    page = render_td3(PEOPLE[0], seed=3).convert("L")
    stripes = Image.fromarray(np.tile(np.asarray(page)[-160:-40], (7, 1)))  # MRZ-like lines over the whole page
    reading = ocr.read_document(stripes, time_budget=3.0)
    assert reading.seconds < 3.0 + SLACK
    assert reading.attempts <= ocr.MAX_ATTEMPTS


def test_a_look_alike_the_check_digit_cannot_decide_needs_the_documents_prints_to_decide_it() -> None:
    """Two zeros of a document number read as O at weights 7 and 3 still pass the check digit: the reading is valid
    as text, and wrong. It may only verify if the document's own prints decide each such O."""
    from datetime import date

    from core.kyc.mrz import check_digit, parse
    from core.kyc.ocr import _doubts_settled

    number = "100OO0003"
    line2 = number + check_digit("100000003") + "UTO7408122F1204159<<<<<<<<<<<<<<<"
    line2 += check_digit(line2[0:10] + line2[13:20] + line2[21:43])
    misread = parse(["P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", line2], today=date(2024, 6, 1))
    assert misread.valid  # the check digits cannot tell
    from core.kyc.mrz import LOOKALIKES, doubtful_positions

    doubtful = doubtful_positions(misread)
    o_positions = {(1, 3), (1, 4)}
    assert o_positions <= doubtful

    def prints(at_os: dict[str, float]) -> dict[tuple[int, int], dict[str, float]]:
        """Every other doubtful glyph clearly looks like what was read; the O's as given."""
        scores = {p: {misread.lines[p[0]][p[1]]: 0.9, LOOKALIKES[misread.lines[p[0]][p[1]]]: 0.7} for p in doubtful}
        return {**scores, **{p: at_os for p in o_positions}}

    assert _doubts_settled(misread, {}).checks["lookalikes"] is False  # no prints: no evidence
    assert _doubts_settled(misread, prints({"0": 0.88, "O": 0.7})).checks["lookalikes"] is False  # zeros, really
    assert _doubts_settled(misread, prints({"0": 0.88})).checks["lookalikes"] is False
    assert _doubts_settled(misread, prints({"O": 0.9, "0": 0.7})).valid  # they look like this document's O's
    assert _doubts_settled(misread, prints({"0": 0.6})).valid  # no other O printed, and clearly not its zeros
