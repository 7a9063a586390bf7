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
from PIL import Image

from core.mrz import icao, lookalikes, rapid, tesseract, text
from core.mrz.bands import Located, locate, stacked
from core.mrz.glyphs import TARGET_CHAR_HEIGHT, Glyph, agrees, unmask
from core.mrz.icao import Mrz
from core.mrz.prepare import ImageInput, load_grey

TIME_BUDGET = 12.0  # seconds for one document, decoding included
MAX_ATTEMPTS = 14  # tesseract runs for one document
MAX_SECOND_READS = 3  # crops the second recogniser reads for one document


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
    anchored: bool = True  # read glyph by glyph on the MRZ's fixed pitch (a template), not as free text


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
    session = _Session(today, second, deadline, max_attempts)
    def rectified() -> list[tuple[Image.Image, float]]:
        return _rectified_bands(located) if time.monotonic() < deadline - 2.0 else []

    session.run(located, rectified if second else None)
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

    def run(self, located: Located, rectified: tesseract.Rectified | None) -> None:
        templates: list[list[list[Glyph]]] = []
        for variant in tesseract.variants(located, templates, rectified):
            if self.attempts >= self.max_attempts or time.monotonic() >= self.deadline:
                break
            self.attempts += 1
            raw = tesseract.ocr(variant.image, variant.config, self.deadline, boxes=variant.template is not None)
            if raw is None:
                break
            if variant.template is not None:
                raw = unmask(raw, variant.template, variant.image.height) or ""
            found = _parse(raw, self.today)
            if found is not None and self.second and (_digits_pass(found) or _plausible(found)):
                # the second recogniser (about 0.25 s a line) reads only crops tesseract made sense of
                self._read_second(variant.prepared)
                if not _digits_pass(found):
                    found = self._repaired(found)
            if found is not None:
                template = variant.template or (templates[0] if templates else None)
                judged = self._judged(found, variant.template, variant.dark, template)
                anchored = variant.template is not None
                self.seen.append(Seen(judged, "\n".join(judged.lines), variant.source, anchored))
            if self._settled():
                break

    def _read_second(self, prepared: tesseract.Prepared) -> None:
        """RapidOCR's reading of the same crop's lines (once per crop, a few crops per document)."""
        if prepared.serial in self._read_sources or len(self.second_lines) >= MAX_SECOND_READS:
            return
        if time.monotonic() > self.deadline - 1.0:
            return
        self._read_sources.add(prepared.serial)
        lines = [line for line, _ in rapid.read_lines(prepared.line_images())]
        if lines:
            self.second_lines.append(lines)

    def _repaired(self, found: Mrz) -> Mrz:
        """Tesseract's reading, where it fails a check digit, with the second recogniser's characters where that
        read the lines whole: its look-alikes (O/0, I/1, ...), and up to two other characters in fields a check
        digit covers. Kept only when every check digit then passes: the two recognisers and the check digits
        decide together, and a name is never taken from one recogniser alone."""
        for read in self.second_lines:
            if len(read) != len(found.lines) or any(len(a) != len(b) for a, b in zip(read, found.lines, strict=True)):
                continue
            chars = [list(line) for line in found.lines]
            others = 0
            for row, (mine, theirs) in enumerate(zip(found.lines, read, strict=True)):
                for col, (x, y) in enumerate(zip(mine, theirs, strict=True)):
                    if x == y or y not in icao.CHARSET:
                        continue
                    if lookalikes.LOOKALIKES.get(x) == y:
                        chars[row][col] = y
                    elif lookalikes.covered(found, (row, col)) and x != "<" and y != "<":
                        chars[row][col] = y  # a check digit covers it and will say which of the two it is
                        others += 1
            if others > 2:
                continue
            try:  # letter-only and digit-only fields keep their class (a name has no 0)
                repaired = icao.parse(text.clean(["".join(line) for line in chars]), today=self.today)
            except icao.MrzError:
                continue
            if _digits_pass(repaired):
                return repaired
        return found

    def alignment(self, found: Mrz) -> lookalikes.Alignment:
        """What the second recogniser's readings say of `found`: the positions any of them read the same, and the
        positions one of them read otherwise and none the same (each reading aligned at its best-fitting lines)."""
        confirmed: set[tuple[int, int]] = set()
        contradicted: set[tuple[int, int]] = set()
        for read in self.second_lines:
            windows = [
                lookalikes.align(found, read[start : start + len(found.lines)])
                for start in range(len(read) - len(found.lines) + 1)  # a crop without glyphs may hold more lines
            ]
            if windows:
                best = max(windows, key=lambda w: len(w.confirmed) - len(w.contradicted))
                confirmed |= best.confirmed
                contradicted |= best.contradicted
        # a recogniser reads some crops worse than others: what one reading of it confirms, another's slip does
        # not undo; a position none confirms and one contradicts is a disagreement
        return lookalikes.Alignment(frozenset(confirmed), frozenset(contradicted - confirmed))

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
                position in lookalikes.align(found, read[start : start + len(found.lines)]).confirmed
                and _same_char(found, read[start : start + len(found.lines)], position, char)
                for read in self.second_lines
                for start in range(len(read) - len(found.lines) + 1)
            )

        return confirmed

    def _settled(self) -> bool:
        """A trusted reading, or one both recognisers read alike that stays in doubt only for its look-alikes:
        more crops of the same print will not decide what the check digits and the prints cannot."""
        return any(self._trusted(reading) or self._in_doubt_alike(reading) for reading in self.seen)

    def _in_doubt_alike(self, reading: Seen) -> bool:
        failing = {name for name, ok in reading.mrz.checks.items() if not ok}
        if not self.second or failing != {"lookalikes"}:
            return False
        alignment = self.alignment(reading.mrz)
        positions = _print_positions(reading.mrz)
        return not alignment.contradicted and len(positions & alignment.confirmed) >= 0.9 * len(positions)

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
        # a second crop by tesseract counts only where both readings stand on the glyphs' fixed pitch: free text
        # may drop a character and gain another in the same place on every crop
        if not unconfirmed:
            return True
        others = [
            other
            for other in self.seen
            if other.anchored and other.source != reading.source and other.mrz.format == reading.mrz.format
        ]
        return reading.anchored and all(
            any(other.mrz.lines[row][col] == reading.mrz.lines[row][col] for other in others)
            for row, col in unconfirmed
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


MAX_DETECTED_GROUPS = 8  # groups of lines of a busy photo tried while looking for the MRZ


def _rectified_bands(located: Located) -> list[tuple[Image.Image, float]]:
    """The MRZ candidates RapidOCR's detector finds, each line warped upright and the lines stacked into a band,
    with its characters' estimated height: for photos taken at an angle, or so busy (a letter, a desk, other
    cards) that the band finder takes other print for the MRZ. Groups of 2 or 3 long lines of like size are tried
    from the bottom up; a group counts when its glyphs stand on an MRZ's fixed-pitch grid."""
    quads = rapid.find_lines(located.upright)
    sizes = [(float(np.linalg.norm(q[1] - q[0])), float(np.linalg.norm(q[3] - q[0]))) for q in quads]
    bands: list[tuple[Image.Image, float]] = []
    used: set[int] = set()
    read = 0
    for end in range(len(quads), 0, -1):
        for count in (3, 2):
            group = list(range(end - count, end))
            if group[0] < 0 or used & set(group):
                continue
            widths = [sizes[i][0] for i in group]
            heights = [sizes[i][1] for i in group]
            if max(widths) > 1.25 * min(widths) or max(heights) > 1.5 * min(heights):
                continue
            lines = [rapid.rectified(located.upright, quads[i]) for i in group]
            band, height = stacked(lines), 0.62 * sum(heights) / count
            read += 1
            if not tesseract.looks_like_mrz(band, height):
                continue
            bands.append((band, height))
            used |= set(group)
            break
        if len(bands) >= 2 or read >= MAX_DETECTED_GROUPS:
            break
    return bands


def _parse(raw: str, today: date | None) -> Mrz | None:
    try:
        return text.read(raw, today=today) if today is not None else text.read(raw)
    except (icao.MrzError, ValueError, IndexError):
        return None


def _plausible(found: Mrz) -> bool:
    """Whether a parse that fails checks is still worth returning: most checks pass and a date is real."""
    passed = sum(1 for ok in found.checks.values() if ok)
    return 2 * passed >= len(found.checks) and (found.birth_date is not None or found.expiry_date is not None)


_READER_CHECKS = frozenset({"lookalikes", "fillers", "corroborated"})


def _digits_pass(found: Mrz) -> bool:
    return all(ok for name, ok in found.checks.items() if name not in _READER_CHECKS) and found.valid


def _score(found: Mrz) -> tuple[bool, bool, int]:
    """Valid first, then every check digit passing (only the reader in doubt), then the most checks passing."""
    digits = all(ok for name, ok in found.checks.items() if name not in _READER_CHECKS)
    return found.valid, digits, sum(1 for passed in found.checks.values() if passed)


__all__ = ["MAX_ATTEMPTS", "TARGET_CHAR_HEIGHT", "TIME_BUDGET", "Reading", "Seen", "choose", "read_mrz"]
