"""Machine readable zones of travel documents (ICAO Doc 9303, parts 3, 4, 5, 6 and 7), as read by OCR.

Every MRZ is two or three lines of a fixed width drawn from ``A-Z``, ``0-9`` and the filler ``<``.
Positions below are 0-based, end-exclusive slices of each line.

TD1, ID cards (part 5), 3 x 30::

    line 1  [0:2] document code  [2:5] issuing state  [5:14] document number  [14] check
            [15:30] optional data 1
    line 2  [0:6] birth date  [6] check  [7] sex  [8:14] expiry date  [14] check  [15:18] nationality
            [18:29] optional data 2  [29] composite check
    line 3  [0:30] name
    composite = line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29]

    A document number longer than 9 characters: its first 9 characters fill [5:14], [14] holds the filler
    '<', and the rest of the number followed by its check digit and a filler open optional data 1. The check
    digit covers the whole number.

Long lines, TD2 (part 6, 2 x 36), TD3 passports (part 4, 2 x 44) and visas MRV-A (2 x 44) / MRV-B (2 x 36)
(part 7) share one layout::

    line 1  [0:2] document code  [2:5] issuing state  [5:] name (31 characters in TD2/MRV-B, 39 in TD3/MRV-A)
    line 2  [0:9] document number  [9] check  [10:13] nationality  [13:19] birth date  [19] check  [20] sex
            [21:27] expiry date  [27] check, then
            TD2    [28:35] optional data                    [35] composite check
            TD3    [28:42] personal number  [42] its check  [43] composite check
            MRV-A  [28:44] optional data, no check digit and no composite
            MRV-B  [28:36] optional data, no check digit and no composite
    composite: TD2 line2[0:10] + [13:20] + [21:35];  TD3 line2[0:10] + [13:20] + [21:43]

    TD3's personal number check may be '<' when the personal number is all fillers. TD2 allows the same long
    document number overflow as TD1, into its optional data. A visa's document code starts with 'V'.

Check digits (part 3): weights 7, 3, 1 repeating; digits count as their value, A-Z as 10..35, '<' as 0; the
sum modulo 10.

Names: primary identifier (surname), then '<<', then the secondary identifiers (given names) separated by
single fillers; a missing '<<' means there are no given names.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date

FILLER = "<"
_CHARSET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<")
_WEIGHTS = (7, 3, 1)


class MrzError(ValueError):
    """The lines are not a recognisable machine readable zone."""


@dataclass(frozen=True)
class Mrz:
    """A parsed MRZ. Text fields have their fillers turned into single spaces and stripped; ``checks`` holds
    one entry per check digit of the format ("document_number", "birth_date", "expiry_date", and TD3's
    "optional_data", TD1/TD2/TD3's "composite"). Dates are None when the field is not a calendar date."""

    format: str
    document_code: str
    issuing_country: str
    surname: str
    given_names: str
    document_number: str
    nationality: str
    birth_date: date | None
    sex: str
    expiry_date: date | None
    optional_data: str
    checks: dict[str, bool] = field(hash=False)
    lines: tuple[str, ...]

    @property
    def valid(self) -> bool:
        """Every check digit passes and both dates are real calendar dates."""
        return all(self.checks.values()) and self.birth_date is not None and self.expiry_date is not None


def check_digit(field: str) -> str:
    """The 7-3-1 check digit of ``field`` (characters A-Z, 0-9 and '<'), as a character '0'..'9'."""
    total = 0
    for i, ch in enumerate(field):
        if "0" <= ch <= "9":
            value = ord(ch) - 48
        elif "A" <= ch <= "Z":
            value = ord(ch) - 55
        elif ch == FILLER:
            value = 0
        else:
            raise MrzError(f"not an MRZ character: {ch!r}")
        total += value * _WEIGHTS[i % 3]
    return str(total % 10)


# --- layouts -------------------------------------------------------------------------------------------------

Span = tuple[int, int, int]  # line, start, end


@dataclass(frozen=True)
class _Layout:
    format: str
    width: int
    height: int
    code: Span
    issuing: Span
    name: Span
    number: Span
    number_check: Span
    nationality: Span
    birth: Span
    birth_check: Span
    sex: Span
    expiry: Span
    expiry_check: Span
    optional: tuple[Span, ...]
    optional_check: Span | None = None
    composite: tuple[Span, ...] = ()
    composite_check: Span | None = None
    long_number: bool = False  # document numbers over 9 characters overflow into optional[0]


_TD1 = _Layout(
    format="TD1",
    width=30,
    height=3,
    code=(0, 0, 2),
    issuing=(0, 2, 5),
    number=(0, 5, 14),
    number_check=(0, 14, 15),
    optional=((0, 15, 30), (1, 18, 29)),
    birth=(1, 0, 6),
    birth_check=(1, 6, 7),
    sex=(1, 7, 8),
    expiry=(1, 8, 14),
    expiry_check=(1, 14, 15),
    nationality=(1, 15, 18),
    composite=((0, 5, 30), (1, 0, 7), (1, 8, 15), (1, 18, 29)),
    composite_check=(1, 29, 30),
    name=(2, 0, 30),
    long_number=True,
)


def _long_layout(fmt: str, width: int, **extra: object) -> _Layout:
    return _Layout(
        format=fmt,
        width=width,
        height=2,
        code=(0, 0, 2),
        issuing=(0, 2, 5),
        name=(0, 5, width),
        number=(1, 0, 9),
        number_check=(1, 9, 10),
        nationality=(1, 10, 13),
        birth=(1, 13, 19),
        birth_check=(1, 19, 20),
        sex=(1, 20, 21),
        expiry=(1, 21, 27),
        expiry_check=(1, 27, 28),
        **extra,  # type: ignore[arg-type]
    )


_TD2 = _long_layout(
    "TD2",
    36,
    optional=((1, 28, 35),),
    composite=((1, 0, 10), (1, 13, 20), (1, 21, 35)),
    composite_check=(1, 35, 36),
    long_number=True,
)
_TD3 = _long_layout(
    "TD3",
    44,
    optional=((1, 28, 42),),
    optional_check=(1, 42, 43),
    composite=((1, 0, 10), (1, 13, 20), (1, 21, 43)),
    composite_check=(1, 43, 44),
)
_MRVA = _long_layout("MRVA", 44, optional=((1, 28, 44),))
_MRVB = _long_layout("MRVB", 36, optional=((1, 28, 36),))


def _layout_for(lines: Sequence[str]) -> _Layout | None:
    shape = (len(lines), len(lines[0]) if lines else 0)
    if any(len(line) != shape[1] for line in lines):
        return None
    visa = bool(lines) and lines[0][:1] == "V"
    return {
        (3, 30): _TD1,
        (2, 36): _MRVB if visa else _TD2,
        (2, 44): _MRVA if visa else _TD3,
    }.get(shape)


def _get(lines: Sequence[str], span: Span) -> str:
    line, start, end = span
    return lines[line][start:end]


# --- parsing -------------------------------------------------------------------------------------------------


def _text(value: str) -> str:
    """Fillers to spaces, collapsed and stripped."""
    return " ".join(value.replace(FILLER, " ").split())


def _passes(data: str, digit: str, *, empty_may_be_filler: bool = False) -> bool:
    if empty_may_be_filler and digit == FILLER and set(data) <= {FILLER}:
        return True
    return digit in "0123456789" and check_digit(data) == digit


def _date(value: str, today: date, *, birth: bool) -> date | None:
    if not re.fullmatch(r"[0-9]{6}", value):
        return None
    yy, month, day = int(value[:2]), int(value[2:4]), int(value[4:6])
    year = today.year // 100 * 100 + yy
    if birth:
        if (year, month, day) > (today.year, today.month, today.day):  # nobody is born in the future
            year -= 100
    elif year > today.year + 50:
        year -= 100
    elif year < today.year - 50:
        year += 100
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _normalise(lines: Sequence[str] | str) -> list[str]:
    if isinstance(lines, str):
        lines = lines.splitlines()
    out = ["".join(line.split()).upper() for line in lines]
    return [line for line in out if line]


def parse(lines: Sequence[str], *, today: date | None = None) -> Mrz:
    """Parse the 2 or 3 lines of an MRZ. Whitespace is ignored; nothing else is corrected (see `clean`).

    ``today`` (default: the current date) places two-digit years: a birth date is never in the future, an
    expiry date is in the current century unless that puts it more than 50 years away.
    """
    rows = _normalise(lines)
    layout = _layout_for(rows)
    if layout is None:
        raise MrzError(f"not a TD1, TD2, TD3 or MRV shape: {len(rows)} lines of {[len(r) for r in rows]}")
    for row in rows:
        bad = set(row) - _CHARSET
        if bad:
            raise MrzError(f"characters outside A-Z, 0-9 and '<': {''.join(sorted(bad))!r}")
    if not "A" <= rows[0][0] <= "Z":
        raise MrzError("the document code must start with a letter")
    today = today or date.today()

    number = _get(rows, layout.number)
    number_digit = _get(rows, layout.number_check)
    optional = [_get(rows, span) for span in layout.optional]
    if layout.long_number and number_digit == FILLER and optional[0][:1] not in ("", FILLER):
        # 9303 part 5/6: the overflow of a long document number and its check digit open the optional data
        run = optional[0].split(FILLER, 1)[0]
        number, number_digit = number + run[:-1], run[-1]
        optional[0] = optional[0][len(run) :]

    checks = {"document_number": _passes(number, number_digit)}
    birth_raw, expiry_raw = _get(rows, layout.birth), _get(rows, layout.expiry)
    checks["birth_date"] = _passes(birth_raw, _get(rows, layout.birth_check))
    checks["expiry_date"] = _passes(expiry_raw, _get(rows, layout.expiry_check))
    if layout.optional_check is not None:
        checks["optional_data"] = _passes(
            _get(rows, layout.optional[0]), _get(rows, layout.optional_check), empty_may_be_filler=True
        )
    if layout.composite_check is not None:
        composite = "".join(_get(rows, span) for span in layout.composite)
        checks["composite"] = _passes(composite, _get(rows, layout.composite_check))

    name = _get(rows, layout.name)
    surname, _, given = name.partition(FILLER * 2)
    sex = _get(rows, layout.sex)
    return Mrz(
        format=layout.format,
        document_code=_text(_get(rows, layout.code)),
        issuing_country=_text(_get(rows, layout.issuing)),
        surname=_text(surname),
        given_names=_text(given),
        document_number=number.replace(FILLER, ""),
        nationality=_text(_get(rows, layout.nationality)),
        birth_date=_date(birth_raw, today, birth=True),
        sex="X" if sex == FILLER else sex,
        expiry_date=_date(expiry_raw, today, birth=False),
        optional_data=" ".join(part for part in (_text(o) for o in optional) if part),
        checks=checks,
        lines=tuple(rows),
    )


# --- look-alike characters the check digit cannot tell apart --------------------------------------------------

LOOKALIKES = {"O": "0", "0": "O", "I": "1", "1": "I", "B": "8", "8": "B", "S": "5", "5": "S", "Z": "2", "2": "Z"}
_MAX_LOOKALIKES = 10  # per field: 2**10 alternative readings at most


def doubtful_positions(found: Mrz) -> set[tuple[int, int]]:
    """(line, column) of the look-alike characters (O/0, I/1, B/8, S/5, Z/2) in the fields that a check digit
    covers but no character class does (the document number, TD3's personal number) where reading the look-alike
    instead still passes the check digit. There the check digit proves nothing: O counts 24 and 0 counts 0, so two
    zeros read as O at weights 7 and 3 add 8 + 2 and the digit still matches. Only evidence from elsewhere (the
    document's own prints of each character) may decide such a position."""
    layout = _layout_for(found.lines)
    if layout is None:
        return set()
    fields = [(layout.number, layout.number_check, False)]
    if layout.optional_check is not None:
        fields.append((layout.optional[0], layout.optional_check, True))
    doubtful: set[tuple[int, int]] = set()
    for span, check_span, may_be_filler in fields:
        line, start, end = span
        value, digit = found.lines[line][start:end], _get(found.lines, check_span)
        if digit == FILLER or not _passes(value, digit, empty_may_be_filler=may_be_filler):
            continue  # an overflowing long number is checked elsewhere; a failing field fails anyway
        spots = [i for i, ch in enumerate(value) if ch in LOOKALIKES][:_MAX_LOOKALIKES]
        for mask in range(1, 2 ** len(spots)):
            flipped = [i for bit, i in enumerate(spots) if mask >> bit & 1]
            other = list(value)
            for i in flipped:
                other[i] = LOOKALIKES[other[i]]
            if _passes("".join(other), digit):
                doubtful |= {(line, start + i) for i in flipped}
    return doubtful


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
    rows = [row.translate(_GLYPHS) for row in _normalise(lines)]
    layout = _layout_for(rows)
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
