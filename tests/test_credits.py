import pytest

from simulator.core.importers.credits import is_agency, normalise_source, split_credit


@pytest.mark.parametrize(
    ("text", "body", "source"),
    [
        ("Troops moved in. [AP]", "Troops moved in.", "AP"),
        ("Troops moved in. [Reuters]", "Troops moved in.", "Reuters"),
        ("Troops moved in. [REUTERS]", "Troops moved in.", "Reuters"),
        ("Troops moved in. [AFP]", "Troops moved in.", "AFP"),
        ("Troops moved in. [Associated Press]", "Troops moved in.", "AP"),
        ("Troops moved in. (AFP)", "Troops moved in.", "AFP"),
        ("Troops moved in. [Reuters] ", "Troops moved in.", "Reuters"),
        ("Troops moved in. [Reuters]\u00a0", "Troops moved in.", "Reuters"),
        ("Troops moved in.\u00a0[Reuters]\u00a0 \n", "Troops moved in.", "Reuters"),
        ("Said so.\n[Associated Press]", "Said so.", "AP"),
        ("First.\n\nSecond ends here. [AFP]", "First.\n\nSecond ends here.", "AFP"),
        ("Rebels celebrate in Mosul [Al Jazeera]", "Rebels celebrate in Mosul", "Al Jazeera"),
        ("[AP] \n\nHere's more from AP.", "Here's more from AP.", "AP"),
        ("[AP]", "", "AP"),
    ],
)
def test_split_credit_finds_agency(text: str, body: str, source: str) -> None:
    assert split_credit(text) == (body, source)


@pytest.mark.parametrize(
    "text",
    [
        "No credit here.",
        "it [ISIL] will be a source of instability",
        "arrests in coordination with the agency (DGST)",
        "The group [ISIL]",
        "[Reuters] says the talks failed.",
        "Reuters reports heavy fighting",
        "",
    ],
)
def test_split_credit_leaves_uncredited_text_alone(text: str) -> None:
    assert split_credit(text) == (text, None)


def test_split_credit_takes_only_the_last_credit() -> None:
    assert split_credit("Caption one [Reuters]\nCaption two [AFP]") == (
        "Caption one [Reuters]\nCaption two",
        "AFP",
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("AP", "AP"),
        ("Associated Press", "AP"),
        ("associated  press", "AP"),
        ("[Associated Press]", "AP"),
        (" reuters ", "Reuters"),
        ("REUTERS", "Reuters"),
        ("(AFP)", "AFP"),
        ("Agence France-Presse", "AFP"),
        ("Al Jazeera English", "Al Jazeera"),
        ("al jazeera", "Al Jazeera"),
        ("Getty Images", "Getty Images"),
        ("AFP/Getty", "AFP/Getty Images"),
        ("Press Association", "PA"),
        ("  Kurdistan\u00a0 24 ", "Kurdistan 24"),
    ],
)
def test_normalise_source(name: str, expected: str) -> None:
    assert normalise_source(name) == expected


def test_is_agency() -> None:
    assert is_agency("Associated Press")
    assert is_agency("[REUTERS]")
    assert not is_agency("ISIL")
    assert not is_agency("")
