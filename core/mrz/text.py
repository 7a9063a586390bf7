"""From OCR text to MRZ lines: finding 2 or 3 lines of the right widths, repairing their lengths, and undoing the
typical OCR confusions field by field (a digit-only field has no O, a name no 0) before ICAO parsing."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from core.mrz.icao import FILLER, Mrz, MrzError, Span, layout_for, normalise, parse

# --- OCR clean-up --------------------------------------------------------------------------------------------

_TO_DIGIT = str.maketrans("OQDILZSGBT", "0001125687")
_TO_LETTER = str.maketrans("015826", "OISBZG")
_FILLER_LOOKALIKES = frozenset("<KCL")  # what OCR makes of a filler inside letter fields
_GLYPHS = str.maketrans({"«": "<", "‹": "<", "＜": "<"})


def _digits(value: str) -> str:
    """A digit-only field (dates, check digits). A date may hold fillers, a check digit sometimes must."""
    return value.translate(_TO_DIGIT).replace("K", FILLER).replace("C", FILLER)


def _letters(value: str) -> str:
    return value.translate(_TO_LETTER)


def _trailing_fillers(value: str) -> str:
    """Turn a trailing run (3+) of '<', 'K', 'C', 'L' back into fillers.

    The run may start with real characters (ERIK<<<, ERICK<<<, MICHAELKKKK, a personal number "C<<<"): the
    run's head, the part before its first '<', is kept when it is one or two characters long and followed by
    real fillers; a longer head is misread fillers except for leading characters that differ from its most
    common glyph, so ``MICHAELKKKK`` keeps its L. A run of one glyph is all filler (``ERIKKKKK`` is ambiguous
    and becomes ``ERI<<<<<``).
    """
    start = len(value)
    while start > 0 and value[start - 1] in _FILLER_LOOKALIKES:
        start -= 1
    run = value[start:]
    if len(run) < 3 or set(run) == {FILLER}:
        return value
    head = run.split(FILLER, 1)[0]
    keep = 0
    if len(head) <= 2 and head != run:
        keep = len(head)
    elif head:
        glyph = Counter(head).most_common(1)[0][0]
        while keep < len(head) and head[keep] != glyph:
            keep += 1
    return value[: start + keep] + FILLER * (len(run) - keep)


def _name(value: str) -> str:
    """Letters only; trailing fillers restored; a '<<' separator read as KK, <K or K< restored.

    The separator is only looked for when no '<<' is left before the trailing fillers: then the first mixed
    pair (<K, K<) is taken, or, when the field as read holds no '<<' at all (OCR misreading every filler), the
    first KK. A real '<<' anywhere in the name protects names such as HAKKINEN or MIKKO.
    """
    value = _letters(value)
    fixed = _trailing_fillers(value)
    body = fixed.rstrip(FILLER)
    if FILLER * 2 not in body:
        pattern = r"<K|K<" if FILLER * 2 in value else r"KK|<K|K<"
        found = re.search(pattern, body)
        if found:
            fixed = fixed[: found.start()] + FILLER * 2 + fixed[found.end() :]
    return fixed


def _country(value: str) -> str:
    value = _letters(value)
    if value[:1] == "D" and set(value[1:]) <= {"K", FILLER}:
        return "D<<"  # Germany's code is D<<
    return value


def _code(value: str) -> str:
    first = _letters(value[:1])
    second = FILLER if value[1:2] == "K" else _letters(value[1:2])
    return first + second


def _sex(value: str) -> str:
    return FILLER if value in ("K", "C") else _letters(value)


def clean(lines: Sequence[str]) -> list[str]:
    """Undo typical OCR confusions field by field, using the fixed layout of the format.

    Digit-only positions (dates, check digits) map O Q D -> 0, I L -> 1, Z -> 2, S -> 5, G -> 6, B -> 8, T -> 7;
    letter-only positions (document code, countries, sex, names) map 0 -> O, 1 -> I, 5 -> S, 8 -> B, 2 -> Z,
    6 -> G. Trailing filler runs misread as K/C/L become fillers again. Alphanumeric fields (document number,
    optional data) keep their characters. Check digits are never consulted: a wrong digit stays wrong.
    Lines that do not have the shape of a known format are only stripped of spaces and uppercased.
    """
    rows = [row.translate(_GLYPHS) for row in normalise(lines)]
    layout = layout_for(rows)
    if layout is None:
        return rows
    chars = [list(row) for row in rows]

    def apply(span: Span | None, fix: Callable[[str], str]) -> None:
        if span is None:
            return
        line, start, end = span
        fixed = fix("".join(chars[line][start:end]))
        assert len(fixed) == end - start
        chars[line][start:end] = list(fixed)

    for span in (layout.birth, layout.birth_check, layout.expiry, layout.expiry_check, layout.number_check):
        apply(span, _digits)
    apply(layout.optional_check, _digits)
    apply(layout.composite_check, _digits)
    apply(layout.code, _code)
    apply(layout.issuing, _country)
    apply(layout.nationality, _country)
    apply(layout.sex, _sex)
    apply(layout.name, _name)
    apply(layout.number, _trailing_fillers)
    for span in layout.optional:
        apply(span, _trailing_fillers)
    return ["".join(row) for row in chars]


# --- finding the MRZ in OCR text -----------------------------------------------------------------------------

_WIDTHS = {30: 3, 36: 2, 44: 2}  # line width -> lines per MRZ
_SLACK = 2
_OUTSIDE = re.compile(r"^[^A-Z0-9<]+|[^A-Z0-9<]+$")
_MRZ_LINE = re.compile(r"[A-Z0-9<]+")


@dataclass(frozen=True)
class _Line:
    index: int  # among the non-blank lines of the text
    width: int
    repaired: tuple[str, ...]  # best repair first
    cost: int


_MAX_REPAIRS = 12


def _repairs(row: str, width: int) -> tuple[str, ...]:
    """Ways to bring ``row`` to ``width``, likeliest first: fillers lost or gained at the end, then junk at the
    start, then fillers lost or gained inside a run of fillers (read() keeps whichever checks out)."""
    extra = len(row) - width
    if extra == 0:
        return (row,)
    runs = [m for m in re.finditer(r"<{2,}", row) if m.end() < len(row)]  # inner runs of fillers
    if extra < 0:
        out = [row + FILLER * -extra]
        out += [row[: m.end()] + FILLER * -extra + row[m.end() :] for m in runs]
    else:
        out = [row[cut : cut + width] for cut in [0, *range(extra, 0, -1)]]
        out += [row[: m.end() - extra] + row[m.end() :] for m in runs if m.end() - m.start() > extra]
    return tuple(dict.fromkeys(out))[:_MAX_REPAIRS]


def _mrz_lines(ocr_text: str) -> list[_Line]:
    found = []
    rows = [row for row in ocr_text.splitlines() if row.strip()]
    for index, raw in enumerate(rows):
        row = _OUTSIDE.sub("", "".join(raw.split()).upper().translate(_GLYPHS))
        if not _MRZ_LINE.fullmatch(row):
            continue
        for width in _WIDTHS:
            if abs(len(row) - width) <= _SLACK:
                found.append(_Line(index, width, _repairs(row, width), abs(len(row) - width)))
    return found


def candidates(ocr_text: str) -> list[list[str]]:
    """Plausible MRZ line groups in raw OCR text, best first.

    Lines lose their spaces and stray punctuation at either end; lines of ``A-Z0-9<`` within two characters
    of 30, 36 or 44 are padded with fillers or trimmed, and runs of consecutive such lines of one width are
    grouped 3 x 30, 2 x 36 or 2 x 44. Groups needing fewer repairs come first, then groups lower on the page
    (the MRZ is at the bottom), then groups whose first line starts like a document code.
    """
    lines = _mrz_lines(ocr_text)
    ranked: list[tuple[tuple[int, int, int], list[str]]] = []
    for width, height in _WIDTHS.items():
        same = [line for line in lines if line.width == width]
        for start in range(len(same) - height + 1):
            window = same[start : start + height]
            gaps = sum(b.index - a.index - 1 for a, b in zip(window, window[1:], strict=False))
            cost = 10 * gaps + sum(line.cost for line in window)
            for variant in _combinations([line.repaired for line in window]):
                looks_like_code = variant[0][:1] in "PIACV"
                ranked.append(((cost, -window[-1].index, 0 if looks_like_code else 1), variant))
    ranked.sort(key=lambda item: item[0])
    out: list[list[str]] = []
    for _, group in ranked:
        if group not in out:
            out.append(group)
    return out


def _combinations(options: list[tuple[str, ...]]) -> list[list[str]]:
    groups: list[list[str]] = [[]]
    for choices in options:
        groups = [group + [choice] for group in groups for choice in choices]
    return groups


def read(ocr_text: str, *, today: date | None = None) -> Mrz | None:
    """Find and parse the MRZ in raw OCR text; None when nothing parses.

    Every candidate group is tried cleaned (see `clean`) and as read; the first fully valid parse wins,
    otherwise the parse with the most passing check digits.
    """
    best: Mrz | None = None
    for group in candidates(ocr_text):
        for lines in (clean(group), group):
            try:
                mrz = parse(lines, today=today)
            except MrzError:
                continue
            if mrz.valid:
                return mrz
            if best is None or sum(mrz.checks.values()) > sum(best.checks.values()):
                best = mrz
    return best
