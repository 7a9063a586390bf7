"""`read_mrz(image) -> Reading`: the stages of the reader, bounded in time, and what makes a reading trusted.

1. image preparation (`prepare`): decode (refusing more than MAX_PIXELS), EXIF orientation, grey;
2. band finding (`bands`): skew found and rotated away, the MRZ band located; when none is found, the text
   detector of the second recogniser (`rapid.find_lines`) proposes the long lines of the page instead;
3. recognition: tesseract on crops of the band (`tesseract`, several scales, fillers masked by shape), and RapidOCR's
   recogniser on the same crops' lines (`rapid`);
4. look-alike repair (`text.clean`, `lookalikes`): digit-only and letter-only fields mapped to their class, other
   look-alikes decided by the document's own prints or left in doubt;
5. ICAO parsing (`icao`) with every check digit.

A reading is `valid` only when every check passes and nothing is in doubt: check digits, fillers where the image has
chevrons (`fillers`), no undecided look-alike (`lookalikes`), and `corroborated`: two recognisers (tesseract and
RapidOCR) read the same lines, character for character; without the second recogniser, two crops of different scale
read by tesseract must agree on the characters no check digit covers. Where a look-alike in a field could be read
either way and the check digit accepts both, the second recogniser reading the same character settles it unless the
document's prints clearly say otherwise.
"""

from __future__ import annotations

import difflib
import os
import time
from dataclasses import dataclass, replace
from datetime import date

import numpy as np

from core.mrz import icao, lookalikes, rapid, tesseract, text
from core.mrz.bands import Band, Located, locate
from core.mrz.glyphs import TARGET_CHAR_HEIGHT, Glyph, agrees, unmask
from core.mrz.icao import Mrz
from core.mrz.prepare import ImageInput, load_grey

TIME_BUDGET = 20.0  # seconds for one document, decoding included
MAX_ATTEMPTS = 14  # tesseract runs for one document
MAX_SECOND_READS = 4  # crops the second recogniser reads for one document


@dataclass(frozen=True)
class Reading:
    mrz: Mrz | None  # best parse found (fully valid preferred, else most passing checks)
    text: str  # the MRZ lines that produced it
    attempts: int  # tesseract runs
    seconds: float
    agreed: bool = False  # tesseract and the second recogniser read these lines alike


@dataclass(frozen=True)
class Seen:
    mrz: Mrz
    text: str
    source: int  # the prepared crop it was read from


def read_mrz(
    image: ImageInput,
    *,
    today: date | None = None,
    time_budget: float = TIME_BUDGET,
    max_attempts: int = MAX_ATTEMPTS,
    second_reader: bool = True,
) -> Reading:
    """Read the MRZ of the document in `image` (a path, bytes, a binary file or a PIL image).

    Never raises for the content of an image: an undecodable, blank or unreadable one gives mrz None. A missing
    file raises FileNotFoundError, a missing tesseract pytesseract.TesseractNotFoundError.
    """
    started = time.monotonic()
    deadline = started + time_budget
    grey = load_grey(image)
    if grey is None:
        return Reading(None, "", 0, time.monotonic() - started)
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # tesseract's OpenMP threads slow it on small machines
    second = second_reader and rapid.available()
    located = locate(grey)
    if second and not located.bands:
        located.bands = _detected_bands(located)
    session = _Session(today, second, deadline, max_attempts)
    session.run(located)
    best, lines, agreed = session.choose()
    return Reading(best, lines, session.attempts, time.monotonic() - started, agreed)


class _Session:
    """The readings of one document so far, what the second recogniser says of them, and when to stop."""

    def __init__(self, today: date | None, second: bool, deadline: float, max_attempts: int) -> None:
        self.today, self.second, self.deadline, self.max_attempts = today, second, deadline, max_attempts
        self.seen: list[Seen] = []
        self.second_lines: list[list[str]] = []  # the second recogniser's raw lines, one list per crop
        self.attempts = 0
        self._read_sources: set[int] = set()

    def run(self, located: Located) -> None:
        templates: list[list[list[Glyph]]] = []
        for variant in tesseract.variants(located, templates):
            if self.attempts >= self.max_attempts or time.monotonic() >= self.deadline:
                break
            if self.second:
                self._read_second(variant.prepared)
            self.attempts += 1
            raw = tesseract.ocr(variant.image, variant.config, self.deadline, boxes=variant.template is not None)
            if raw is None:
                break
            if variant.template is not None:
                raw = unmask(raw, variant.template, variant.image.height) or ""
            found = _parse(raw, self.today)
            if found is not None:
                template = variant.template or (templates[0] if templates else None)
                judged = self._judged(found, variant.template, variant.dark, template)
                self.seen.append(Seen(judged, "\n".join(judged.lines), variant.source))
            if self._settled():
                break

    def _read_second(self, prepared: tesseract.Prepared) -> None:
        """RapidOCR's reading of the same crop's lines (once per crop, a few crops per document)."""
        if prepared.serial in self._read_sources or len(self.second_lines) >= MAX_SECOND_READS:
            return
        self._read_sources.add(prepared.serial)
        lines = [line for line, _ in rapid.read_lines(prepared.line_images())]
        if lines:
            self.second_lines.append(lines)

    def alignment(self, found: Mrz) -> lookalikes.Alignment:
        """The second recogniser's reading that agrees best with `found`: fewest contradictions, most confirmed."""
        best = lookalikes.Alignment(frozenset(), frozenset())
        for lines in self.second_lines:
            if len(lines) != len(found.lines):
                continue
            candidate = lookalikes.align(found, lines)
            if (len(candidate.contradicted), -len(candidate.confirmed)) < (
                len(best.contradicted) if best.confirmed else 10**6,
                -len(best.confirmed),
            ):
                best = candidate
        return best

    def _judged(
        self,
        found: Mrz,
        glyphs: list[list[Glyph]] | None,
        dark: np.ndarray | None,
        template: list[list[Glyph]] | None,
    ) -> Mrz:
        """Look-alikes re-decided by the document's prints or the second recogniser (or left in doubt), fillers
        compared with the image."""
        confirmed = self._confirmation() if self.second else None
        if glyphs is not None and dark is not None:
            found = lookalikes.resolve_lookalikes(found, glyphs, dark, self.today, confirmed)
        else:
            found = lookalikes.doubts_settled(found, {}, confirmed)
        return agrees(found, template)

    def _confirmation(self) -> lookalikes.Confirmation:
        def confirmed(found: Mrz, position: tuple[int, int]) -> bool:
            row, col = position
            char = found.lines[row][col]
            return any(
                len(lines) == len(found.lines) and position in lookalikes.align(found, lines).confirmed
                and _same_char(found, lines, position, char)
                for lines in self.second_lines
            )

        return confirmed

    def _settled(self) -> bool:
        return any(self._trusted(reading) for reading in self.seen)

    def _trusted(self, reading: Seen) -> bool:
        """Valid, no contradiction from the second recogniser on any line it read whole, and every character read
        alike twice: by the second recogniser, or else by tesseract on another crop. A check digit alone is weak
        evidence (one misread in ten passes it, and TD3's composite repeats the document number's sum)."""
        if not reading.mrz.valid:
            return False
        alignment = self.alignment(reading.mrz) if self.second else lookalikes.Alignment(frozenset(), frozenset())
        if alignment.contradicted:
            return False
        unconfirmed = _print_positions(reading.mrz) - alignment.confirmed
        return not unconfirmed or any(
            other.source != reading.source
            and other.mrz.format == reading.mrz.format
            and all(other.mrz.lines[row][col] == reading.mrz.lines[row][col] for row, col in unconfirmed)
            for other in self.seen
        )

    def choose(self) -> tuple[Mrz | None, str, bool]:
        """The trusted valid reading if any; else the best plausible one, with a failing check `corroborated` when
        it is valid as text but not trusted (so it does not verify)."""
        for reading in self.seen:
            if self._trusted(reading):
                return reading.mrz, reading.text, self.second and bool(self.alignment(reading.mrz).confirmed)
        candidates = [r for r in self.seen if r.mrz.valid or _plausible(r.mrz)]
        if not candidates:
            return None, "", False
        found = max(candidates, key=lambda r: _score(r.mrz)).mrz
        if found.valid or "corroborated" not in found.checks:
            found = replace(found, checks={**found.checks, "corroborated": False})
        return found, "\n".join(found.lines), False


def _same_char(found: Mrz, lines: list[str], position: tuple[int, int], char: str) -> bool:
    """Whether the aligned character of the second recogniser's line at `position` is `char` itself (a look-alike
    the field's class decided does not count as reading the same)."""
    row, col = position
    matcher = difflib.SequenceMatcher(None, found.lines[row], lines[row], autojunk=False)
    for op, i1, i2, j1, _ in matcher.get_opcodes():
        if op == "equal" and i1 <= col < i2:
            return lines[row][j1 + col - i1] == char
    return False


def _print_positions(found: Mrz) -> set[tuple[int, int]]:
    """The positions of letters and digits (the fillers are told by their shape)."""
    return {(row, col) for row, line in enumerate(found.lines) for col, char in enumerate(line) if char != "<"}


def choose(seen: list[Seen], second_lines: list[list[str]] | None = None) -> tuple[Mrz | None, str]:
    """The choice `read_mrz` makes among tesseract's readings `seen` and, when given, the second recogniser's
    raw lines, which must then agree with a reading for it to be trusted."""
    session = _Session(None, second_lines is not None, 0.0, 0)
    session.seen, session.second_lines = list(seen), list(second_lines or [])
    found, lines, _ = session.choose()
    return found, lines


def _detected_bands(located: Located) -> list[Band]:
    """Bands around the lowest groups of 2-3 long lines RapidOCR's detector finds: for busy photos where the
    projection-based band finder sees none."""
    boxes = rapid.find_lines(located.upright)
    bands = []
    for count in (3, 2):
        for end in range(len(boxes), count - 1, -1):
            group = boxes[end - count : end]
            heights = [bottom - top for _, top, _, bottom in group]
            widths = [right - left for left, _, right, _ in group]
            if max(widths) > 1.25 * min(widths) or max(heights) > 1.6 * min(heights):
                continue
            height = sum(heights) / count * 0.7  # a detected box is taller than the characters
            margin = int(1.2 * height)
            box = (
                max(0, min(b[0] for b in group) - margin),
                max(0, group[0][1] - margin),
                min(located.upright.width, max(b[2] for b in group) + margin),
                min(located.upright.height, group[-1][3] + margin),
            )
            scaled = tuple(round(v * located.ratio) for v in box)
            bands.append(Band(scaled, height * located.ratio, 0.0))  # type: ignore[arg-type]
            break
    return bands[:2]


def _parse(raw: str, today: date | None) -> Mrz | None:
    try:
        return text.read(raw, today=today) if today is not None else text.read(raw)
    except (icao.MrzError, ValueError, IndexError):
        return None


def _plausible(found: Mrz) -> bool:
    """Whether a parse that fails checks is still worth returning: most checks pass and a date is real."""
    passed = sum(1 for ok in found.checks.values() if ok)
    return 2 * passed >= len(found.checks) and (found.birth_date is not None or found.expiry_date is not None)


def _score(found: Mrz) -> tuple[bool, int]:
    return found.valid, sum(1 for passed in found.checks.values() if passed)


__all__ = ["MAX_ATTEMPTS", "TARGET_CHAR_HEIGHT", "TIME_BUDGET", "Reading", "Seen", "choose", "read_mrz"]
