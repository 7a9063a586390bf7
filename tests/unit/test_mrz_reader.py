"""The reader package's interface, `core.mrz.read_mrz(image) -> Reading`, with the real tesseract and RapidOCR
(installed by `make test`; never skipped), on documents the tests render.

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

from core.mrz import icao as mrz
from core.mrz import lookalikes, rapid, read_mrz, reader
from tests.documents import PEOPLE, Person, render_td1, render_td3, td1_lines, td3_lines

SLACK = 5.0  # seconds past the budget for decoding and the last tesseract run to return


def test_tesseract_is_installed() -> None:
    assert shutil.which("tesseract"), "tesseract is missing: `make test` installs it (apt-get install tesseract-ocr)"


def test_the_second_recogniser_is_installed() -> None:
    assert rapid.available(), "rapidocr-onnxruntime is missing: it is in requirements.txt"


def _card(person: Person) -> Person:
    return dataclasses.replace(person, document_code="I")


def _expected(lines: list[str]) -> mrz.Mrz:
    expected = mrz.parse(lines)
    assert expected.valid
    return expected


def _fields(found: mrz.Mrz) -> dict[str, Any]:
    """Everything a reading tells about the person and the document (the checks are compared by `valid`)."""
    return {field.name: getattr(found, field.name) for field in dataclasses.fields(found) if field.name != "checks"}


# two people each: letters and digits in the number, Germany's D<<, a long name, a hyphen (the bench reads them all)
@pytest.mark.parametrize("person", [PEOPLE[1], PEOPLE[2]], ids=lambda p: p.surname)
def test_a_clean_passport_reads_exactly(person: Person) -> None:
    reading = read_mrz(render_td3(person, seed=1))
    assert reading.mrz is not None, reading.text
    assert reading.mrz.valid, reading.mrz
    assert _fields(reading.mrz) == _fields(_expected(td3_lines(person)))
    assert reading.mrz.surname == person.surname.replace("-", " ") and reading.mrz.birth_date == person.birth_date
    assert reading.attempts >= 1 and reading.seconds < reader.TIME_BUDGET + SLACK


@pytest.mark.parametrize("person", [PEOPLE[0], PEOPLE[3]], ids=lambda p: p.surname)
def test_a_clean_id_card_reads_exactly(person: Person) -> None:
    card = _card(person)
    reading = read_mrz(render_td1(card, seed=2))
    assert reading.mrz is not None, reading.text
    assert reading.mrz.valid, reading.mrz
    assert reading.mrz.format == "TD1"
    assert _fields(reading.mrz) == _fields(_expected(td1_lines(card)))


def test_a_file_path_reads_like_the_image(tmp_path: Any) -> None:
    path = tmp_path / "passport.jpg"
    render_td3(PEOPLE[0], seed=4).save(path, quality=90)
    reading = read_mrz(str(path))
    assert reading.mrz is not None and reading.mrz.valid
    assert reading.mrz.document_number == PEOPLE[0].document_number


# (name, TD3 or TD1, degradations): a representative subset of scans and phone photos, one render each.
DEGRADED: list[tuple[str, str, dict[str, float]]] = [
    # scans and phone photos of the renderer's own documents; tests/unit/test_mrz_layouts.py and bench.kyc_ocr read
    # realistic photos of every layout
    ("jpeg q40", "td3", {"jpeg": 40}),
    ("uneven light", "td3", {"lighting": 0.6}),
    ("rotated -1.5", "td1", {"rotate": -1.5}),
    ("scale 0.6", "td3", {"scale": 0.6}),
    ("on a table", "td1", {"background": 0.6, "rotate": 1.0}),
    ("phone photo", "td3", {"background": 0.5, "rotate": -2.0, "lighting": 0.4, "blur": 0.8, "noise": 6, "jpeg": 60}),
]
DegradedReading = Callable[[str], tuple[reader.Reading, list[str]]]


@pytest.fixture(scope="module")
def read_degraded() -> DegradedReading:
    """Each degraded render is read once per module, by whichever test needs it first: the share test below stands
    alone (any order, or on its own) and the file still runs tesseract once per render."""
    readings: dict[str, tuple[reader.Reading, list[str]]] = {}

    def read(name: str) -> tuple[reader.Reading, list[str]]:
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
            readings[name] = read_mrz(render(person, seed=seed, **degradations)), lines
        return readings[name]

    return read


def _verified(reading: reader.Reading) -> bool:
    return reading.mrz is not None and reading.mrz.valid


@pytest.mark.parametrize("name", [case[0] for case in DEGRADED])
def test_a_degraded_render_verifies_exactly_or_not_at_all(name: str, read_degraded: DegradedReading) -> None:
    reading, lines = read_degraded(name)
    assert reading.seconds < reader.TIME_BUDGET + SLACK
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
    """Names have no check digit and a check digit passes one misread in ten: without a second recogniser a
    verification needs a second crop, read glyph by glyph, that read every character the same."""
    right = mrz.parse(td3_lines(PEOPLE[0]))
    first, second = td3_lines(PEOPLE[0])
    misread = mrz.parse([first.replace("ERIKSSON", "ERIKSDON"), second])
    assert misread.valid and misread.surname != right.surname
    seen = reader.Seen

    found, _ = reader.choose([seen(misread, "", source=1), seen(right, "", source=2)])
    assert found is not None and not found.valid and found.checks["corroborated"] is False
    found, _ = reader.choose([seen(right, "", source=1), seen(right, "", source=1)])
    assert found is not None and not found.valid  # the same crop twice is no second opinion
    found, _ = reader.choose([seen(right, "", 1, anchored=False), seen(right, "", 2, anchored=False)])
    assert found is not None and not found.valid  # free text may drop and gain a character on every crop alike
    found, _ = reader.choose([seen(misread, "", source=1), seen(right, "", 2), seen(right, "", 3)])
    assert found == right


def test_with_a_second_recogniser_a_contradiction_anywhere_keeps_a_reading_from_verifying() -> None:
    right = mrz.parse(td3_lines(PEOPLE[0]))
    first, second = td3_lines(PEOPLE[0])
    misread = mrz.parse([first.replace("ERIKSSON", "ERIKSDON"), second])
    seen = reader.Seen
    tesseract_read = [seen(misread, "", 1), seen(misread, "", 2)]  # two crops agree, and are wrong
    found, _ = reader.choose(tesseract_read, [list(right.lines)])
    assert found is not None and not found.valid and found.checks["corroborated"] is False
    # the second recogniser read the whole MRZ the same: one tesseract crop is enough
    found, _ = reader.choose([seen(right, "", 1)], [list(right.lines)])
    assert found == right
    # a line it lost characters of says nothing; the name it did read still must not contradict
    found, _ = reader.choose([seen(right, "", 1), seen(right, "", 2)], [[first[:30], second]])
    assert found == right
    # the class of a field decides a look-alike: O read as 0 in a name is no contradiction
    found, _ = reader.choose([seen(right, "", 1)], [[first.replace("ERIKSSON", "ERIKSS0N"), second]])
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
    reading = read_mrz(image(), time_budget=5.0)
    assert reading.mrz is None
    assert reading.seconds < 5.0 + SLACK


def test_undecodable_bytes_read_nothing() -> None:
    reading = read_mrz(b"\x89PNG\r\n\x1a\n not really")
    assert reading.mrz is None and reading.attempts == 0


def test_a_hostile_image_is_bounded_by_the_budget() -> None:
    """Text-like noise keeps tesseract busy: the budget and the attempt cap still end the reading."""
    page = render_td3(PEOPLE[0], seed=3).convert("L")
    stripes = Image.fromarray(np.tile(np.asarray(page)[-160:-40], (7, 1)))  # MRZ-like lines over the whole page
    reading = read_mrz(stripes, time_budget=3.0)
    assert reading.seconds < 3.0 + SLACK
    assert reading.attempts <= reader.MAX_ATTEMPTS


def test_a_look_alike_the_check_digit_cannot_decide_needs_independent_evidence() -> None:
    """Two zeros of a document number read as O at weights 7 and 3 still pass the check digit: the reading is valid
    as text, and wrong. It may only verify if the document's own prints, or the second recogniser where the prints
    do not show O and 0 printed alike, decide each such O."""
    from datetime import date

    number = "100OO0003"
    line2 = number + mrz.check_digit("100000003") + "UTO7408122F1204159<<<<<<<<<<<<<<<"
    line2 += mrz.check_digit(line2[0:10] + line2[13:20] + line2[21:43])
    misread = mrz.parse(["P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", line2], today=date(2024, 6, 1))
    assert misread.valid  # the check digits cannot tell
    doubtful = lookalikes.doubtful_positions(misread)
    o_positions = {(1, 3), (1, 4)}
    assert o_positions <= doubtful

    def prints(at_os: dict[str, float]) -> dict[tuple[int, int], dict[str, float]]:
        """Every other doubtful glyph clearly looks like what was read; the O's as given."""
        other = lookalikes.LOOKALIKES
        scores = {p: {misread.lines[p[0]][p[1]]: 0.9, other[misread.lines[p[0]][p[1]]]: 0.7} for p in doubtful}
        return {**scores, **{p: at_os for p in o_positions}}

    def settled(at_os: dict[str, float], confirmed: bool = False) -> mrz.Mrz:
        return lookalikes.doubts_settled(misread, prints(at_os), (lambda _m, _p: confirmed) if confirmed else None)

    no_prints = lookalikes.doubts_settled(misread, {})
    assert no_prints.checks["lookalikes"] is False and no_prints.uncertain == ("document_number",)
    assert settled({"0": 0.88, "O": 0.7}).checks["lookalikes"] is False  # zeros, really
    assert settled({"0": 0.88}).checks["lookalikes"] is False
    assert settled({"O": 0.9, "0": 0.7}).valid  # they look like this document's O's
    assert settled({"0": 0.6}).valid  # no other O printed, and clearly not its zeros
    # the second recogniser read O there too: enough unless the prints show O and 0 alike, or lean to 0
    assert settled({"O": 0.78, "0": 0.65}, confirmed=True).valid
    assert not settled({"O": 0.78, "0": 0.65}).valid  # the prints alone are not sure enough
    assert not settled({"O": 0.86, "0": 0.85}, confirmed=True).valid
    assert not settled({"0": 0.88, "O": 0.7}, confirmed=True).valid
    assert lookalikes.doubts_settled(misread, {}, lambda _m, _p: True).valid  # no prints either way
