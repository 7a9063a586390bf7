"""Look-alike characters (O/0, I/1, B/8, S/5, Z/2, D/O ...): where the check digit cannot tell them apart, and how the
document's own prints of each character decide them, or leave the reading in doubt."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date

import numpy as np
from PIL import Image

from core.mrz import icao
from core.mrz.glyphs import Glyph
from core.mrz.icao import FILLER, Mrz, get, layout_for, passes

# --- look-alike characters the check digit cannot tell apart --------------------------------------------------

LOOKALIKES = {"O": "0", "0": "O", "I": "1", "1": "I", "B": "8", "8": "B", "S": "5", "5": "S", "Z": "2", "2": "Z"}
_MAX_LOOKALIKES = 10  # per field: 2**10 alternative readings at most


def doubtful_positions(found: Mrz) -> set[tuple[int, int]]:
    """(line, column) of the look-alike characters (O/0, I/1, B/8, S/5, Z/2) in the fields that a check digit
    covers but no character class does (the document number, TD3's personal number) where reading the look-alike
    instead still passes the check digit. There the check digit proves nothing: O counts 24 and 0 counts 0, so two
    zeros read as O at weights 7 and 3 add 8 + 2 and the digit still matches. Only evidence from elsewhere (the
    document's own prints of each character) may decide such a position."""
    layout = layout_for(found.lines)
    if layout is None:
        return set()
    fields = [(layout.number, layout.number_check, False)]
    if layout.optional_check is not None:
        fields.append((layout.optional[0], layout.optional_check, True))
    doubtful: set[tuple[int, int]] = set()
    for span, check_span, may_be_filler in fields:
        line, start, end = span
        value, digit = found.lines[line][start:end], get(found.lines, check_span)
        if digit == FILLER or not passes(value, digit, empty_may_be_filler=may_be_filler):
            continue  # an overflowing long number is checked elsewhere; a failing field fails anyway
        spots = [i for i, ch in enumerate(value) if ch in LOOKALIKES][:_MAX_LOOKALIKES]
        for mask in range(1, 2 ** len(spots)):
            flipped = [i for bit, i in enumerate(spots) if mask >> bit & 1]
            other = list(value)
            for i in flipped:
                other[i] = LOOKALIKES[other[i]]
            if passes("".join(other), digit):
                doubtful |= {(line, start + i) for i in flipped}
    return doubtful


# --- characters that look alike ---------------------------------------------------------------------------------
# OCR-B's 0 and O, D and O, 8 and B, ... differ only slightly, and tesseract sometimes picks the wrong one: in a
# document number or optional data no field type decides, and in the names or country codes no check digit catches
# it. The other glyphs of the same MRZ show how this document prints each character: a glyph that clearly resembles
# the prints of a look-alike more than those of the character read takes the look-alike. Positions whose type is
# fixed keep it (a date stays digits, a name letters).

_CLEARLY = 0.05  # how much more a glyph must look like one character's prints than its look-alike's (a best of many
# prints of one character beats a single print of the same shape by a few hundredths)
_SAME_GLYPH = 0.8  # similarity two prints of one character reach (0 and 0: 0.85-0.9; 0 and O: about 0.7)


def _typed(lines: tuple[str, ...]) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
    """(positions that hold a letter or filler, positions that hold a digit or filler) of an MRZ of this shape."""
    width = len(lines[0])

    def cells(line: int, start: int, end: int) -> set[tuple[int, int]]:
        return {(line, i) for i in range(start, end)}

    if len(lines) == 3:
        letters = cells(0, 0, 5) | cells(1, 7, 8) | cells(1, 15, 18) | cells(2, 0, 30)
        digits = cells(0, 14, 15) | cells(1, 0, 7) | cells(1, 8, 15) | cells(1, 29, 30)
        return letters, digits
    letters = cells(0, 0, width) | cells(1, 10, 13) | cells(1, 20, 21)
    digits = cells(1, 9, 10) | cells(1, 13, 20) | cells(1, 21, 28)
    if lines[0][:1] != "V":  # visas have no check digits at the end
        digits |= cells(1, 42, 44) if width == 44 else cells(1, 35, 36)
    return letters, digits


class _Print:
    """One glyph's ink, normalised for comparison with others."""

    def __init__(self, ink: np.ndarray, line_height: float) -> None:
        image = Image.fromarray(np.where(ink, 255, 0).astype(np.uint8), "L")
        self.shape = np.asarray(image.resize((20, 28), Image.Resampling.BILINEAR)) > 127
        # sizes relative to the glyphs of the same line: lines of one MRZ come out a little differently tall
        # (a slight tilt, a threshold), and only the glyph's proportions tell 0 from O
        self.height, self.width = ink.shape[0] / line_height, ink.shape[1] / line_height

    def likeness(self, other: _Print) -> float:
        """Overlap of the normalised shapes, less the difference in size: ~0.85-0.9 for two prints of one
        character, ~0.7 for 0 and O."""
        overlap = float((self.shape & other.shape).sum()) / max(1, int((self.shape | other.shape).sum()))
        return (
            overlap
            - abs(self.height - other.height) / max(self.height, other.height)
            - abs(self.width - other.width) / max(self.width, other.width)
        )


Scores = dict[tuple[int, int], dict[str, float]]


def scores_of(lines: tuple[str, ...], template: list[list[Glyph]], dark: np.ndarray) -> Scores:
    """For each glyph of the MRZ, its best likeness to the document's other prints of each character."""
    prints: dict[tuple[int, int], _Print] = {}
    for row, line in enumerate(template):
        heights = [g.bottom - g.top for g in line if not g.filler]
        line_height = float(np.median(heights)) if heights else 1.0
        for col, glyph in enumerate(line):
            if not glyph.filler and lines[row][col] != "<":
                prints[row, col] = _Print(dark[glyph.top : glyph.bottom, glyph.left : glyph.right], line_height)
    if not prints:
        return {}
    positions = list(prints)
    shapes = np.stack([prints[p].shape.ravel() for p in positions]).astype(np.float32)
    tall = np.array([prints[p].height for p in positions])
    wide = np.array([prints[p].width for p in positions])
    both = shapes @ shapes.T  # pixels inked in both shapes
    sums = shapes.sum(axis=1)
    either = np.maximum(sums[:, None] + sums[None, :] - both, 1.0)
    likeness = (
        both / either
        - np.abs(tall[:, None] - tall[None, :]) / np.maximum(tall[:, None], tall[None, :])
        - np.abs(wide[:, None] - wide[None, :]) / np.maximum(wide[:, None], wide[None, :])
    )  # _Print.likeness for every pair at once
    chars = [lines[row][col] for row, col in positions]
    scores: Scores = {}
    for i, position in enumerate(positions):
        score: dict[str, float] = {}
        for j, char in enumerate(chars):
            if j != i and likeness[i, j] > score.get(char, -1.0):
                score[char] = float(likeness[i, j])
        scores[position] = score
    return scores


Confirmation = Callable[[Mrz, tuple[int, int]], bool]


def _in_doubt(found: Mrz, positions: set[tuple[int, int]]) -> Mrz:
    """`found` failing the check `lookalikes`, the fields holding `positions` named in `uncertain`."""
    fields = tuple(dict.fromkeys([*found.uncertain, *sorted({icao.field_at(found.lines, p) for p in positions})]))
    return replace(found, checks={**found.checks, "lookalikes": False}, uncertain=fields)


def resolve_lookalikes(
    found: Mrz,
    template: list[list[Glyph]],
    dark: np.ndarray,
    today: date | None,
    confirmed: Confirmation | None = None,
) -> Mrz:
    """`found` with the glyphs of its letter-and-digit fields re-decided by the document's own prints, and a failing
    check `lookalikes` if a letter of a name or country code looks more like the prints of another letter, or if a
    look-alike in the document number or personal number is one the check digit cannot decide and the prints do
    not decide either (see `doubts_settled`)."""
    lines = found.lines
    if [len(line) for line in lines] != [len(line) for line in template]:
        return doubts_settled(found, {}, confirmed)
    letters, digits = _typed(lines)
    scores = scores_of(lines, template, dark)
    chars = [list(line) for line in lines]
    doubts: set[tuple[int, int]] = set()
    for position, score in scores.items():
        if position in digits:
            continue  # mrz.clean made it a digit, and a check digit covers it
        char = lines[position[0]][position[1]]
        rivals = [c for c in score if c != char and (position not in letters or c.isalpha())]
        if not rivals:
            continue
        rival = max(rivals, key=lambda c: score[c])
        if score[rival] >= _SAME_GLYPH and score[rival] > score.get(char, -1.0) + 0.05:
            if position in letters:
                # a name or country: no check digit would catch a wrong guess; only the second recogniser reading
                # the same letter there settles it
                if confirmed is None or not confirmed(found, position):
                    doubts.add(position)
            else:
                chars[position[0]][position[1]] = rival  # a document number or optional data: check digits judge
    fixed = ["".join(row) for row in chars]
    result = found
    if fixed != list(lines):
        try:
            result = icao.parse(fixed, today=today)
        except icao.MrzError:
            pass
    if doubts:
        result = _in_doubt(result, doubts)
    return doubts_settled(result, scores, confirmed)


def _printed_alike(found: Mrz, scores: Scores, char: str, other: str) -> bool:
    """Whether some print of `other` on the document looks like its prints of `char` (a font, or a printer, whose
    0 and O, or 1 and I, are one shape)."""
    return any(
        found.lines[row][col] == other and score.get(char, -1.0) >= _SAME_GLYPH for (row, col), score in scores.items()
    )


def doubts_settled(found: Mrz, scores: Scores, confirmed: Confirmation | None = None) -> Mrz:
    """A look-alike the check digit cannot decide (`doubtful_positions`) must be decided by independent evidence:
    the document's own prints (the glyph looks like the other prints of the character read and clearly less like
    those of its look-alike, or the document has no other print of the character read but does print the
    look-alike, and this glyph clearly is not that), or the second recogniser reading the same character there
    while the prints lean the same way or the document prints no look-alike. Where the document prints the two
    characters alike, nothing decides. Otherwise the reading fails the check `lookalikes` and the
    field is named in `uncertain`: doubt is never valid. A reading without glyph prints (no template) has only the
    second recogniser."""
    doubts = set()
    for row, col in doubtful_positions(found):
        char = found.lines[row][col]
        if _printed_alike(found, scores, char, LOOKALIKES[char]):
            doubts.add((row, col))  # the document prints the two alike: nothing that reads it can tell them apart
            continue
        score = scores.get((row, col), {})
        mine, rival = score.get(char), score.get(LOOKALIKES[char])
        if mine is not None and mine >= _SAME_GLYPH and (rival is None or mine > rival + 0.05):
            continue
        if mine is None and rival is not None and rival < _SAME_GLYPH - 0.05:
            continue
        # the second recogniser's word counts unless the prints show the two characters printed alike (or the
        # glyph more like the look-alike): then both recognisers are guessing at one shape
        prints_lean_mine = rival is None or (mine is not None and mine > rival + _CLEARLY)
        if confirmed is not None and prints_lean_mine and confirmed(found, (row, col)):
            continue
        doubts.add((row, col))
    return _in_doubt(found, doubts) if doubts else found


@dataclass(frozen=True)
class Alignment:
    """What a second recogniser's raw lines say of a reading, position by position."""

    confirmed: frozenset[tuple[int, int]]  # read the same (or its look-alike where the field's class decides)
    contradicted: frozenset[tuple[int, int]]  # read as another character where nothing decides between them


def align(found: Mrz, raw_lines: list[str]) -> Alignment:
    """Align each line of `found` with the second recogniser's line. CTC recognisers lose or add characters in
    widely spaced print; a line more than one character off the MRZ's width is not used (it abstains). A
    substitution is a contradiction unless the field's ICAO class
    decides it (a look-alike in a letter-only or digit-only field) or a check digit covers the position and the
    other character fails it."""
    letters, digits = _typed(found.lines)
    confirmed: set[tuple[int, int]] = set()
    contradicted: set[tuple[int, int]] = set()
    for row, line in enumerate(found.lines):
        if row >= len(raw_lines):
            break
        other = raw_lines[row]
        if abs(len(other) - len(line)) > 1:
            continue  # the recogniser lost or invented characters here: its alignment says nothing reliable
        matcher = difflib.SequenceMatcher(None, line, other, autojunk=False)
        for op, i1, i2, j1, j2 in matcher.get_opcodes():
            if op == "equal":
                confirmed |= {(row, i) for i in range(i1, i2)}
            elif op == "replace":
                for k, i in enumerate(range(i1, i2)):
                    mine = line[i]
                    theirs = other[j1 + k] if i2 - i1 == j2 - j1 else None
                    position = (row, i)
                    if theirs is not None and LOOKALIKES.get(mine) == theirs and (
                        position in letters or position in digits
                    ):
                        confirmed.add(position)  # the class decides: a name has no 0, a date no O
                    elif theirs is not None and (
                        (position in letters and theirs.isdigit()) or (position in digits and theirs.isalpha())
                    ):
                        continue  # a character the field cannot hold: that recogniser misread it, and abstains
                    elif _refuted(found, position, theirs):
                        continue
                    else:
                        contradicted.add(position)
    return Alignment(frozenset(confirmed), frozenset(contradicted))


def _refuted(found: Mrz, position: tuple[int, int], theirs: str | None) -> bool:
    """Whether the check digits refute the other recogniser's character at `position` (a position they cover,
    and with that character, or any, the reading fails)."""
    row, col = position
    if theirs is None or theirs not in icao.CHARSET:
        return covered(found, position)
    chars = [list(line) for line in found.lines]
    chars[row][col] = theirs
    try:
        other = icao.parse(["".join(line) for line in chars])
    except icao.MrzError:
        return True
    return covered(found, position) and not all(other.checks.values())


def covered(found: Mrz, position: tuple[int, int]) -> bool:
    """Whether a check digit covers `position`."""
    field = icao.field_at(found.lines, position)
    if field in ("names", "nationality", "issuing_country", "document_code", "sex"):
        return False
    if field == "optional_data" and found.format in ("MRVA", "MRVB"):
        return False
    return True
