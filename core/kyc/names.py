"""Comparing a customer's profile name with the name in an MRZ (ICAO Doc 9303 part 3 transliteration).

An MRZ holds only A-Z and fillers, so a name on the profile is transliterated before it is compared: accents
go, Ä Ö Ü become AE OE UE (plain A O U is accepted too), ß becomes SS, Å AA, Æ AE, Ø OE, Þ TH, Ð D, Ł L,
Œ OE, Ĳ IJ; hyphens, apostrophes and spaces separate words. 9303 omits apostrophes (O'BRIEN -> OBRIEN),
so both O BRIEN and OBRIEN are acceptable spellings.
"""

from __future__ import annotations

import difflib
import itertools
import re
import unicodedata

# Characters NFKD cannot take apart. The first spelling is the ICAO one; the others are also accepted.
_SPELLINGS: dict[str, tuple[str, ...]] = {
    "Ä": ("AE", "A"),
    "Ö": ("OE", "O"),
    "Ü": ("UE", "U"),
    "Å": ("AA", "A"),
    "Æ": ("AE",),
    "Ø": ("OE", "O"),
    "Œ": ("OE",),
    "Þ": ("TH",),
    "Ð": ("D",),
    "Đ": ("D",),
    "Ł": ("L",),
    "Ħ": ("H",),
    "Ŧ": ("T",),
    "Ŋ": ("N",),
    "Ĳ": ("IJ",),
    "ẞ": ("SS",),
    "'": (" ", ""),
    "’": (" ", ""),
    "ʼ": (" ", ""),
    "‘": (" ", ""),
    "`": (" ", ""),
    "´": (" ", ""),
}
_SEPARATORS = re.compile(r"[\s\-‐‑‒–—<]+")
_MAX_VARIANTS = 256
# The name field holds 30 characters in TD1 (line 3), 31 in TD2 and MRV-B, 39 in TD3 and MRV-A.
_FIELD_WIDTHS = (30, 31, 39)


def _spellings(name: str) -> list[str]:
    """Every transliteration of ``name``, the ICAO one first, before punctuation is tidied."""
    upper = unicodedata.normalize("NFC", name).upper()  # ß -> SS, ĳ -> Ĳ
    spelled = [""]
    for ch in upper:
        options = _SPELLINGS.get(ch, (ch,))
        if len(spelled) * len(options) > _MAX_VARIANTS:
            options = options[:1]
        spelled = [done + option for done in spelled for option in options]
    return spelled


def _tidy(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = _SEPARATORS.sub(" ", text)
    text = re.sub(r"[^A-Z0-9 ]", "", text.upper())
    return " ".join(text.split())


def normalise_name(name: str) -> str:
    """The ICAO 9303 transliteration of ``name``: upper case A-Z, words separated by single spaces."""
    return _tidy(_spellings(name)[0])


def name_variants(name: str) -> set[str]:
    """All acceptable spellings of ``name`` (ICAO/German style AE OE UE and plain A O U, with and without
    apostrophes as separators)."""
    return {variant for variant in (_tidy(s) for s in _spellings(name)) if variant}


def _render(surname: str, given: str) -> str:
    """The name as the MRZ writes it: SURNAME<<GIVEN<NAMES."""
    rendered = surname.replace(" ", "<")
    if given:
        rendered += "<<" + given.replace(" ", "<")
    return rendered


def _splits(profile_full_name: str) -> list[tuple[str, str]]:
    """(surname, given names) readings of a profile name, surname being the last word(s); a comma means
    "Surname, Given names"."""
    out: list[tuple[str, str]] = []
    if "," in profile_full_name:
        surname, _, given = profile_full_name.partition(",")
        for s in name_variants(surname) or {""}:
            for g in name_variants(given) or {""}:
                out.append((s, g))
        return out
    for variant in name_variants(profile_full_name):
        words = variant.split()
        for k in range(1, len(words) + 1):
            out.append((" ".join(words[-k:]), " ".join(words[:-k])))
    return out


def _same_words(a: str, b: str) -> bool:
    return a == b or a.replace(" ", "") == b.replace(" ", "")


def _truncated_to(full: str, mrz: str) -> bool:
    """Whether ``mrz`` is ``full`` cut to the width of an MRZ name field (trailing fillers dropped)."""
    return any(len(full) > width and full[:width].rstrip("<") == mrz for width in _FIELD_WIDTHS)


def names_match(profile_full_name: str, surname: str, given_names: str) -> tuple[bool, float]:
    """Whether the MRZ name (surname, given names) is a spelling of the profile's full name, and how similar.

    Matches when some variant of the profile name, split into surname (its last word or words) and given
    names, equals the MRZ name with the given names in any order, or when the MRZ name is that variant
    truncated to the width of an MRZ name field. The similarity is 1.0 on a match, otherwise the best
    difflib ratio between the profile's normalised spellings and the MRZ name written either way round.
    """
    mrz_surname, mrz_given = normalise_name(surname), normalise_name(given_names)
    if not mrz_surname and not mrz_given:
        return False, 0.0
    mrz_rendered = _render(mrz_surname, mrz_given)
    mrz_given_sorted = sorted(mrz_given.split())
    for cand_surname, cand_given in _splits(profile_full_name):
        if _same_words(cand_surname, mrz_surname) and (
            sorted(cand_given.split()) == mrz_given_sorted or _same_words(cand_given, mrz_given)
        ):
            return True, 1.0
        given_words = cand_given.split()
        orders = itertools.islice(itertools.permutations(given_words), 24) if given_words else [()]
        for order in orders:
            if _truncated_to(_render(cand_surname, " ".join(order)), mrz_rendered):
                return True, 1.0
    return False, _similarity(profile_full_name, mrz_surname, mrz_given)


def _similarity(profile_full_name: str, surname: str, given: str) -> float:
    readings = {f"{given} {surname}".strip(), f"{surname} {given}".strip()}
    best = 0.0
    for variant in name_variants(profile_full_name.replace(",", " ")):
        for reading in readings:
            best = max(best, difflib.SequenceMatcher(None, variant, reading).ratio())
    return round(best, 4)
