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
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

FILLER = "<"
CHARSET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<")
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
    uncertain: tuple[str, ...] = ()  # fields whose look-alike characters the reading could not decide

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
class Layout:
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


_TD1 = Layout(
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


def _long_layout(fmt: str, width: int, **extra: object) -> Layout:
    return Layout(
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


def layout_for(lines: Sequence[str]) -> Layout | None:
    shape = (len(lines), len(lines[0]) if lines else 0)
    if any(len(line) != shape[1] for line in lines):
        return None
    visa = bool(lines) and lines[0][:1] == "V"
    return {
        (3, 30): _TD1,
        (2, 36): _MRVB if visa else _TD2,
        (2, 44): _MRVA if visa else _TD3,
    }.get(shape)


def get(lines: Sequence[str], span: Span) -> str:
    line, start, end = span
    return lines[line][start:end]


_FIELDS = ("document_number", "optional_data", "nationality", "issuing_country", "names", "document_code", "sex")


def field_at(lines: Sequence[str], position: tuple[int, int]) -> str:
    """The name of the field that holds `position` (line, column) in an MRZ of this shape ("other" for dates and
    check digits)."""
    layout = layout_for(lines)
    if layout is None:
        return "other"
    row, col = position
    spans = {
        "document_number": [layout.number],
        "optional_data": list(layout.optional),
        "nationality": [layout.nationality],
        "issuing_country": [layout.issuing],
        "names": [layout.name],
        "document_code": [layout.code],
        "sex": [layout.sex],
    }
    for name in _FIELDS:
        if any(line == row and start <= col < end for line, start, end in spans[name]):
            return name
    return "other"


# --- parsing -------------------------------------------------------------------------------------------------


def _text(value: str) -> str:
    """Fillers to spaces, collapsed and stripped."""
    return " ".join(value.replace(FILLER, " ").split())


def passes(data: str, digit: str, *, empty_may_be_filler: bool = False) -> bool:
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


def normalise(lines: Sequence[str] | str) -> list[str]:
    if isinstance(lines, str):
        lines = lines.splitlines()
    out = ["".join(line.split()).upper() for line in lines]
    return [line for line in out if line]


def parse(lines: Sequence[str], *, today: date | None = None) -> Mrz:
    """Parse the 2 or 3 lines of an MRZ. Whitespace is ignored; nothing else is corrected (see `clean`).

    ``today`` (default: the current date) places two-digit years: a birth date is never in the future, an
    expiry date is in the current century unless that puts it more than 50 years away.
    """
    rows = normalise(lines)
    layout = layout_for(rows)
    if layout is None:
        raise MrzError(f"not a TD1, TD2, TD3 or MRV shape: {len(rows)} lines of {[len(r) for r in rows]}")
    for row in rows:
        bad = set(row) - CHARSET
        if bad:
            raise MrzError(f"characters outside A-Z, 0-9 and '<': {''.join(sorted(bad))!r}")
    if not "A" <= rows[0][0] <= "Z":
        raise MrzError("the document code must start with a letter")
    today = today or date.today()

    number = get(rows, layout.number)
    number_digit = get(rows, layout.number_check)
    optional = [get(rows, span) for span in layout.optional]
    if layout.long_number and number_digit == FILLER and optional[0][:1] not in ("", FILLER):
        # 9303 part 5/6: the overflow of a long document number and its check digit open the optional data
        run = optional[0].split(FILLER, 1)[0]
        number, number_digit = number + run[:-1], run[-1]
        optional[0] = optional[0][len(run) :]

    checks = {"document_number": passes(number, number_digit)}
    birth_raw, expiry_raw = get(rows, layout.birth), get(rows, layout.expiry)
    checks["birth_date"] = passes(birth_raw, get(rows, layout.birth_check))
    checks["expiry_date"] = passes(expiry_raw, get(rows, layout.expiry_check))
    if layout.optional_check is not None:
        checks["optional_data"] = passes(
            get(rows, layout.optional[0]), get(rows, layout.optional_check), empty_may_be_filler=True
        )
    if layout.composite_check is not None:
        composite = "".join(get(rows, span) for span in layout.composite)
        checks["composite"] = passes(composite, get(rows, layout.composite_check))

    name = get(rows, layout.name)
    surname, _, given = name.partition(FILLER * 2)
    sex = get(rows, layout.sex)
    return Mrz(
        format=layout.format,
        document_code=_text(get(rows, layout.code)),
        issuing_country=_text(get(rows, layout.issuing)),
        surname=_text(surname),
        given_names=_text(given),
        document_number=number.replace(FILLER, ""),
        nationality=_text(get(rows, layout.nationality)),
        birth_date=_date(birth_raw, today, birth=True),
        sex="X" if sex == FILLER else sex,
        expiry_date=_date(expiry_raw, today, birth=False),
        optional_data=" ".join(part for part in (_text(o) for o in optional) if part),
        checks=checks,
        lines=tuple(rows),
    )
