"""Writing systems: non-Latin words found, Cyrillic transliterated, other scripts dropped."""

from __future__ import annotations

from services.planner.scripts import is_latin_text, non_latin_words, transliterate


def test_latin_text_tells_cyrillic_from_latin() -> None:
    assert is_latin_text("Make the café sofa green, 100%!")
    assert is_latin_text("Straße, naïve, Øresund")
    assert not is_latin_text("Make the диван green")


def test_non_latin_words_are_found_in_every_script() -> None:
    text = "Recolour чашку in dark green, 茶 and λευκό, شاي, green-синий"
    assert non_latin_words(text) == ("чашку", "茶", "λευκό", "شاي", "синий")


def test_cyrillic_is_transliterated_keeping_the_case() -> None:
    latin = transliterate("Recolour Чашку in dark green; кальян, щётка, Київ")
    assert latin.text == "Recolour Chashku in dark green; kalyan, shchyotka, Kiyiv"
    assert latin.transliterated == (
        ("Чашку", "Chashku"),
        ("кальян", "kalyan"),
        ("щётка", "shchyotka"),
        ("Київ", "Kiyiv"),
    )
    assert latin.dropped == ()


def test_letters_of_scripts_without_a_table_are_dropped_and_reported() -> None:
    latin = transliterate("a cup of 茶 on a λευκό table")
    assert latin.text == "a cup of on a table"
    assert latin.dropped == ("茶", "λευκό")
    assert is_latin_text(latin.text)


def test_latin_text_passes_unchanged() -> None:
    latin = transliterate("A café table, 100% oak")
    assert latin.text == "A café table, 100% oak"
    assert latin.transliterated == () and latin.dropped == ()
