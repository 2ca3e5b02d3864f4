import datetime as dt
import re

import pytest

from attnkit.tasks import (
    CharVocab,
    UnknownCharactersError,
    char_accuracy,
    dates,
    exact_match,
    read_tsv,
    split,
    times,
    write_tsv,
)


@pytest.mark.property
@pytest.mark.parametrize("seed", [0, 1])
def test_dates_never_map_one_input_to_two_targets(seed):
    pairs = dates.generate(20_000, seed)
    seen = {}
    for text, iso in pairs:
        assert seen.setdefault(text, iso) == iso, text
        d = dt.date.fromisoformat(iso)
        assert dates.FIRST <= d <= dates.LAST


@pytest.mark.property
def test_every_locale_and_format_renders_and_two_digit_years_are_unambiguous():
    day = dt.date(1994, 9, 14)
    for locale in dates.LOCALES:
        for fmt in dates.FORMATS:
            text = dates.render(day, fmt, locale)
            assert "94" in text and "YY" not in text, (locale, fmt, text)
    # the same day-month in 1950 and 2049 never render alike with two-digit years
    assert dates.render(dt.date(1950, 3, 4), "dd.MM.yy", "de_DE") == "04.03.50"
    assert dates.render(dt.date(2049, 3, 4), "dd.MM.yy", "de_DE") == "04.03.49"


@pytest.mark.property
def test_dates_cover_casings_and_scripts():
    texts = [t for t, _ in dates.generate(3000, 3)]
    assert any(t.isupper() for t in texts) and any(t.islower() for t in texts)
    assert any(re.search("[а-я]", t.lower()) for t in texts)
    assert any("年" in t for t in texts)


PERIODS = {  # phrase -> (is_pm, hours 1-12 it may follow), by the module's rule 2
    "am": (False, range(1, 13)),
    "pm": (True, range(1, 13)),
    "in the morning": (False, range(1, 12)),
    "before noon": (False, range(1, 12)),
    "at midnight": (False, [12, 1, 2]),
    "in the afternoon": (True, [12, 1, 2, 3, 4, 5, 6]),
    "after noon": (True, range(1, 13)),
    "in the evening": (True, range(4, 12)),
}


def _read_time(text: str) -> str | None:
    """An independent reading of the digit forms, after normalisation (None for the others)."""
    text = re.sub(r"^(at|around|about|by) ", "", text).removeprefix("t")
    text = re.sub(r"\s*(hrs|hours|h)$", "", text)
    text = re.sub(r"\s*(a\. ?m\.?|am)$", " am", re.sub(r"\s*(p\. ?m\.?|pm)$", " pm", text))
    period = None
    for phrase in sorted(PERIODS, key=len, reverse=True):
        if text.endswith(" " + phrase):
            period, text = phrase, text[: -len(phrase) - 1]
            break
    if text.endswith(" at night") and re.match(r"\d", text):
        text = text[: -len(" at night")]
        period = "pm" if 7 <= int(re.match(r"\d+", text)[0]) <= 11 else "am"
    if m := re.fullmatch(r"(\d{1,2})[:. h](\d{2})|(\d{1,2})(\d{2})|(\d{1,2})h?", text):
        h = int(m[1] or m[3] or m[5])
        mi = int(m[2] or m[4] or 0)
    else:
        return None
    if period:
        pm, hours = PERIODS[period]
        assert h in hours, (text, period)
        h = h % 12 + (12 if pm else 0)
    return f"{h:02d}:{mi:02d}"


@pytest.mark.property
def test_times_are_consistent_and_digit_forms_read_independently():
    task = times.TimesTask.from_pairs([("x", "y")])
    pairs = times.generate(20_000, 5)
    seen, checked = {}, 0
    for text, target in pairs:
        text = task.normalize(text)
        assert seen.setdefault(text, target) == target
        assert re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", target)
        reading = _read_time(text)
        if reading is not None:
            assert reading == target, text
            checked += 1
    assert checked > 5000
    texts = set(seen)
    for needle in (
        "noon",
        "midday",
        "midnight",
        "past",
        " to ",
        " till ",
        " of ",
        "min after",
        "before",
        "o'clock",
        "hours and",
        "a.m.",
        "p. m.",
        "pm",
        "quarter",
        "half",
        "in the afternoon",
        "in the evening",
        "at night",
        "in the morning",
        "hrs",
        "oh ",
        "-",
        "t1",
    ):
        assert any(needle in t for t in texts), needle
    assert any(re.fullmatch(r"\d\dh\d\d", t) for t in texts)


@pytest.mark.property
def test_times_word_examples():
    assert times.number_words(55) == "fifty five"
    assert times.number_words(55, hyphen=True) == "fifty-five"
    assert times.number_words(7) == "seven"


@pytest.mark.property
def test_vocab_round_trip_and_unknown_characters():
    v = CharVocab.from_texts(["abc", "cd"])
    assert v.decode(v.encode("dab", eos=True)) == "dab"
    with pytest.raises(UnknownCharactersError, match="'z'"):
        v.encode("az")
    assert CharVocab.from_list(v.to_list()).itos == v.itos


@pytest.mark.property
def test_metrics():
    assert exact_match(["a", "b"], ["a", "c"]) == 0.5
    assert char_accuracy(["12:00"], ["12:00"]) == 1.0
    assert char_accuracy(["12:0"], ["12:00"]) == 0.8
    assert char_accuracy(["12:000"], ["12:00"]) == pytest.approx(5 / 6)


@pytest.mark.property
def test_split_never_leaks_inputs():
    pairs = [(str(i % 50), "x") for i in range(200)]
    train, held = split(pairs, 0.2, 0)
    assert not {s for s, _ in train} & {s for s, _ in held}
    assert len(train) + len(held) == 50


@pytest.mark.bad_input
def test_tsv(tmp_path):
    path = tmp_path / "pairs.tsv"
    write_tsv(path, [("a b", "1"), ("c", "2")])
    assert read_tsv(path) == [("a b", "1"), ("c", "2")]
    path.write_text("ok\t1\nbroken line\n")
    with pytest.raises(ValueError, match="pairs.tsv:2"):
        read_tsv(path)
    with pytest.raises(ValueError, match="no such data file"):
        read_tsv(tmp_path / "missing.tsv")


def test_every_task_of_the_trainer_is_registered_whatever_its_batch():
    from attnkit.tasks import get

    for name in ("dates", "times", "translate", "lm", "classify", "caption"):
        assert get(name).name == name
    for name, metric in (("prices", "valid_loss"), ("vision", "accuracy")):
        assert get(name).selection_metric == metric
    assert get("longmemory").selection_metric == "correct"
