"""Every MRZ layout read from a realistic photo, and the O/0 and I/1 traps, with the real tesseract and RapidOCR.

The photos come from `tests.photos` (the set `python -m bench.kyc_ocr` measures): one per layout, each under a
moderate degradation and in a font of its own. A reading either verifies with exactly the printed fields or does
not verify; these must verify.
"""

from __future__ import annotations

from datetime import date

import pytest

from core.kyc.decision import decide
from core.mrz import icao, read_mrz
from tests.documents import ONES_TRAP, TRAP_GLYPHS, ZEROS_TRAP, Person, render_td3, td3_lines
from tests.photos import Sample, realistic_set

# index in realistic_set(60) -> what it is (checked below): one document per layout, moderate conditions
PER_LAYOUT = {
    "TD1": 15,  # glare, Liberation Mono
    "TD2": 16,  # shadow, OCR-B
    "TD3": 7,  # glare, DejaVu Sans Mono Bold
    "MRVA": 3,  # glare, DejaVu Sans Mono Bold
    "MRVB": 49,  # a 600 px photo, OCR-B
}


@pytest.fixture(scope="module")
def samples() -> list[Sample]:
    return realistic_set(60)


@pytest.mark.parametrize("layout", list(PER_LAYOUT))
def test_each_layout_reads_exactly_from_a_degraded_photo(layout: str, samples: list[Sample]) -> None:
    sample = samples[PER_LAYOUT[layout]]
    assert sample.layout == layout and sample.level == "moderate"
    reading = read_mrz(sample.image())
    assert reading.mrz is not None, reading.text
    assert reading.mrz.valid, (reading.mrz.lines, reading.mrz.checks)
    assert reading.mrz.lines == tuple(sample.lines)
    assert reading.mrz.format == icao.parse(sample.lines).format == layout


PROFILE = {"full_name": "Anna Maria Eriksson", "birth_date": date(1974, 8, 12)}


@pytest.mark.parametrize(
    ("person", "alternative"),
    [(ZEROS_TRAP, "X12OO7345"), (ONES_TRAP, "L02II9245")],
    ids=["zeros and O", "ones and I"],
)
def test_a_number_whose_look_alikes_the_check_digit_accepts_either_way_needs_review(
    person: Person, alternative: str
) -> None:
    """Printed by a printer whose 0 is its O (and 1 its I), the number reads either way and every check digit
    passes either way: the reading is uncertain and the document goes to a person, never verified."""
    lines = td3_lines(person)
    other = [lines[0], lines[1].replace(person.document_number, alternative)]
    assert icao.parse(lines).valid and icao.parse(other).valid  # the check digits cannot tell
    reading = read_mrz(render_td3(person, seed=5, glyphs=TRAP_GLYPHS, jpeg=70))
    assert reading.mrz is not None
    assert not reading.mrz.valid
    decision = decide(reading.mrz, document_type="passport", today=date(2026, 12, 1), **PROFILE)
    assert decision.status == "needs_review"
    assert any(reason.startswith("uncertain_reading") for reason in decision.reasons), decision.reasons
