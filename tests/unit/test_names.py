"""Profile names against MRZ names, transliterated as ICAO 9303 part 3 does."""

from __future__ import annotations

import pytest

from core.kyc.names import name_variants, names_match, normalise_name
from core.mrz.icao import parse


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Müller", "MUELLER"),
        ("Ødegård", "OEDEGAARD"),
        ("Łukasz", "LUKASZ"),
        ("O'Brien", "O BRIEN"),
        ("Jean-Luc", "JEAN LUC"),
        ("Strauß", "STRAUSS"),
        ("Þór Guðmundsson", "THOR GUDMUNDSSON"),
        ("Ærøskøbing", "AEROESKOEBING"),
        ("Œuvre", "OEUVRE"),
        ("ĳsselmeer", "IJSSELMEER"),
        ("José  María   Núñez", "JOSE MARIA NUNEZ"),
        ("  Anne -  Sophie ", "ANNE SOPHIE"),
        ("St. John, Jr.", "ST JOHN JR"),
        ("Dvořák Čapek Štěpánek", "DVORAK CAPEK STEPANEK"),
    ],
)
def test_normalise_name(name: str, expected: str) -> None:
    assert normalise_name(name) == expected


def test_variants() -> None:
    assert name_variants("Müller") == {"MUELLER", "MULLER"}
    assert name_variants("Jürgen Köhler") == {"JUERGEN KOEHLER", "JURGEN KOEHLER", "JUERGEN KOHLER", "JURGEN KOHLER"}
    assert name_variants("O'Brien") == {"O BRIEN", "OBRIEN"}
    assert name_variants("Smith") == {"SMITH"}


@pytest.mark.parametrize(
    ("profile", "surname", "given"),
    [
        ("Anna Maria Eriksson", "ERIKSSON", "ANNA MARIA"),
        ("Maria Anna Eriksson", "ERIKSSON", "ANNA MARIA"),  # order of given names does not matter
        ("anna maria eriksson", "ERIKSSON", "ANNA MARIA"),
        ("Eriksson, Anna Maria", "ERIKSSON", "ANNA MARIA"),
        ("Hans Müller", "MUELLER", "HANS"),
        ("Hans Müller", "MULLER", "HANS"),
        ("Hans Mueller", "MUELLER", "HANS"),
        ("Kari Ødegård", "OEDEGAARD", "KARI"),
        ("Łukasz Kowalski", "KOWALSKI", "LUKASZ"),
        ("Seán O'Brien", "OBRIEN", "SEAN"),
        ("Seán O'Brien", "O BRIEN", "SEAN"),
        ("Jean-Luc Picard", "PICARD", "JEAN LUC"),
        ("Ludwig van Beethoven", "VAN BEETHOVEN", "LUDWIG"),
        ("Ludwig van Beethoven", "BEETHOVEN", "LUDWIG VAN"),
        ("Anne-Sophie Müller-Lüdenscheidt", "MUELLER LUEDENSCHEIDT", "ANNE SOPHIE"),
        ("Madonna", "MADONNA", ""),
    ],
)
def test_names_that_match(profile: str, surname: str, given: str) -> None:
    assert names_match(profile, surname, given) == (True, 1.0)


def test_truncated_mrz_names_match() -> None:
    profile = "Anna Maria Magdalena Theresia Eriksson-Lindqvist"
    # ERIKSSON<LINDQVIST<<ANNA<MARIA<MAGDALENA<THERESIA is 49 characters: TD3 keeps 39, TD1 30.
    td3 = parse(["P<UTOERIKSSON<LINDQVIST<<ANNA<MARIA<MAGDALEN", "L898902C36UTO7408122F1204159ZE184226B<<<<<10"])
    assert (td3.surname, td3.given_names) == ("ERIKSSON LINDQVIST", "ANNA MARIA MAGDALEN")
    assert names_match(profile, td3.surname, td3.given_names) == (True, 1.0)
    assert names_match(profile, "ERIKSSON LINDQVIST", "ANNA MARIA")[0]  # TD1: exactly 30, cut before a '<'
    # SCHMIDT<<MAXIMILIAN<ALEXANDER<FERDINAND is 39: whole in TD3, cut in TD1 (30) and TD2 (31).
    profile = "Maximilian Alexander Ferdinand Schmidt"
    assert names_match(profile, "SCHMIDT", "MAXIMILIAN ALEXANDER FERDINAND") == (True, 1.0)
    assert names_match(profile, "SCHMIDT", "MAXIMILIAN ALEXANDER") == (True, 1.0)
    assert names_match(profile, "SCHMIDT", "MAXIMILIAN ALEXANDER F") == (True, 1.0)
    assert not names_match(profile, "SCHMIDT", "MAXIMILIAN ALEXANDER FE")[0]


def test_a_short_name_is_not_a_truncation() -> None:
    match, similarity = names_match("Anna Maria Eriksson", "ERIKSSON", "ANNA")
    assert not match
    assert 0.6 < similarity < 1.0
    match, _ = names_match("Anna Maria Magdalena Theresia Eriksson-Lindqvist", "ERIKSSON LINDQVIST", "ANNA MAR")
    assert not match  # cut in the middle of the field: not a truncation


@pytest.mark.parametrize(
    ("profile", "surname", "given"),
    [
        ("Anna Maria Eriksson", "SMITH", "JOHN"),
        ("Anna Maria Eriksson", "JOHANSSON", "PETER"),
        ("Hans Müller", "SCHMIDT", "PETER"),
    ],
)
def test_different_names_do_not_match(profile: str, surname: str, given: str) -> None:
    match, similarity = names_match(profile, surname, given)
    assert not match
    assert similarity < 0.7


def test_a_near_miss_scores_high_but_does_not_match() -> None:
    assert names_match("Hans Müller", "MEIER", "HANS") == (False, pytest.approx(0.82, abs=0.01))
    match, similarity = names_match("Anna Maria Eriksson", "ERIKSON", "ANNA MARIA")
    assert not match
    assert similarity > 0.9
    assert not names_match("John Smith", "SMITH JOHN", "")[0]  # the split between surname and given names counts


def test_empty_mrz_name() -> None:
    assert names_match("Anna Eriksson", "", "") == (False, 0.0)


def test_matching_a_parsed_mrz() -> None:
    mrz = parse(["P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L898902C36UTO7408122F1204159ZE184226B<<<<<10"])
    assert names_match("Anna-Maria Eriksson", mrz.surname, mrz.given_names) == (True, 1.0)
    assert not names_match("Anna Eriksson", mrz.surname, mrz.given_names)[0]
