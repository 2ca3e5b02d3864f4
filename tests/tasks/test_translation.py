"""The translation task on a few verses (no Debian packages needed): verse alignment, book
splits, subword vocabularies, sacreBLEU scores, the sampler, and which module a package owns."""

import base64

import pytest
import sacrebleu
import torch

from attnkit.tasks import bible
from attnkit.tasks import translation as tr
from attnkit.tasks.bible import Verse
from attnkit.tasks.subword import SubwordVocab, words_of
from attnkit.train.samplers import length_batches
from reference import VERSES_EN as EN
from reference import VERSES_ES as ES


def test_verses_pair_by_reference_in_books_numbered_alike():
    en = [
        Verse("Gen", 1, 1, "a"),
        Verse("Gen", 1, 2, "b"),
        Verse("Gen", 1, 3, "c"),
        Verse("Rev", 12, 17, "d"),
        Verse("Tob", 1, 1, "e"),
    ]
    es = [Verse("Gen", 1, 1, "A"), Verse("Gen", 1, 3, "C"), Verse("Rev", 12, 17, "D")]
    schemes = ({"Gen": (3,), "Rev": (18,), "Tob": (1,)}, {"Gen": (3,), "Rev": (17,)})
    pairs, dropped = tr.align(en, es, *schemes)
    # Gen 1:2 is empty in one Bible; Revelation is numbered differently; Tobit is in one only
    assert [(a.text, b.text) for a, b in pairs] == [("a", "A"), ("c", "C")]
    assert dropped == ["Rev"]


def test_no_book_is_in_two_splits_and_every_pair_is_in_one():
    pairs = [
        tr.VersePair(f"B{b}", 1, v, f"e{b}.{v}", f"s{b}.{v}")
        for b in range(25)
        for v in range(1, 4)
    ]
    corpus = tr.split_pairs(pairs, {})
    books = [{p.book for p in part} for part in (corpus.train, corpus.valid, corpus.test)]
    assert all(not a & b for i, a in enumerate(books) for b in books[i + 1 :])
    assert sorted(corpus.train + corpus.valid + corpus.test, key=pairs.index) == pairs
    assert set(corpus.source["test_books"]) == books[2] and books[1] and books[2]
    assert tr.as_pairs(corpus.test[:1], "es-en") == [(corpus.test[0].es, corpus.test[0].en)]


def test_joined_verses_are_two_consecutive_verses_of_one_chapter():
    verses = [
        tr.VersePair(b, c, v, f"e{b}{c}.{v}", f"s{b}{c}.{v}")
        for b, c, v in [
            ("A", 1, 1),
            ("A", 1, 2),
            ("A", 1, 3),
            ("A", 2, 1),
            ("A", 2, 3),
            ("B", 1, 1),
            ("B", 1, 2),
        ]
    ]
    every = tr.joined_verses(verses, 1.0, seed=3)
    # chapter and book ends and the missing A 2:2 break the chain: 3 pairs, in corpus order
    assert [(p.book, p.chapter, p.verse, p.en, p.es) for p in every] == [
        ("A", 1, 1, "eA1.1 eA1.2", "sA1.1 sA1.2"),
        ("A", 1, 2, "eA1.2 eA1.3", "sA1.2 sA1.3"),
        ("B", 1, 1, "eB1.1 eB1.2", "sB1.1 sB1.2"),
    ]
    many = [tr.VersePair("G", 1, v, f"e{v}", f"s{v}") for v in range(1, 201)]
    some = tr.joined_verses(many, 0.25, seed=1)
    assert len(some) == 50 and some == tr.joined_verses(many, 0.25, seed=1)
    assert some != tr.joined_verses(many, 0.25, seed=2)
    assert all(p.en == f"e{p.verse} e{p.verse + 1}" for p in some)
    assert [p.verse for p in some] == sorted(p.verse for p in some)
    assert tr.joined_verses(many, 0.0) == []
    with pytest.raises(ValueError, match="fraction"):
        tr.joined_verses(many, 1.5)


def test_subword_vocabulary_round_trips_text_and_checkpoint():
    vocab = SubwordVocab.train(EN * 10, vocab_size=60)
    for text in EN:
        ids = vocab.encode(text, eos=True)
        assert ids[-1] == vocab.eos_id and min(ids[:-1]) >= vocab.unk_id
        assert vocab.decode(ids) == text
        assert "".join(vocab.pieces(ids[:-1])).replace("▁", " ").strip() == text
    again = SubwordVocab.from_config(vocab.to_config())
    assert again.encode(EN[2]) == vocab.encode(EN[2]) and len(again) == len(vocab)
    assert vocab.unseen("God saw ñ") == ["ñ"]  # never in the training text: the unknown piece
    assert vocab.unk_id in vocab.encode("ñ")
    with pytest.raises(ValueError, match="base64"):
        SubwordVocab.from_config("not base64!")
    with pytest.raises(ValueError, match="sentencepiece"):
        SubwordVocab.from_config(base64.b64encode(b"garbage").decode())


def test_pieces_group_into_words():
    assert words_of(["▁In", "▁the", "▁begin", "ning", ","]) == [
        ("In", [0]),
        ("the", [1]),
        ("beginning,", [2, 3, 4]),
    ]


def test_scores_are_sacrebleu_corpus_scores_with_signatures():
    hyps = ["En el principio creó Dios el cielo", "Y la tierra estaba vacía", "Sea la luz"]
    refs = ES[:3]
    got = tr.corpus_scores(hyps, refs)
    assert got["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    assert got["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score)
    assert got["bleu_signature"].startswith("nrefs:1|case:mixed")
    assert "nc:6" in got["chrf_signature"] and got["n"] == 3
    assert tr.corpus_scores(refs, refs)["bleu"] == pytest.approx(100.0)
    with pytest.raises(ValueError):
        tr.corpus_scores(hyps, refs[:2])


def test_length_batches_see_every_example_once_in_batches_of_like_length():
    lengths = torch.randint(1, 100, (1000,))
    order = length_batches(lengths, 16, seed=0, pool=10)(1, 1000)
    assert sorted(order.tolist()) == list(range(1000))
    spans = [int(lengths[b].max() - lengths[b].min()) for b in order.split(16)]
    assert sum(spans) / len(spans) < 15  # random batches of 16 span about 90
    assert not torch.equal(order, length_batches(lengths, 16, 0, 10)(2, 1000))


def test_token_batches_hold_about_equal_subwords_and_every_example_once():
    gen = torch.Generator().manual_seed(0)
    lengths = torch.randint(4, 200, (3000,), generator=gen)
    sample = length_batches(lengths, 16, seed=0, pool=10, tokens=True)
    batches = sample(1, 3000)
    assert sorted(torch.cat(batches).tolist()) == list(range(3000))
    budget = 16 * lengths.float().mean().item()
    padded = [len(b) * lengths[b].max().item() for b in batches]
    assert max(padded) <= 1.5 * budget and min(padded) >= 0.5 * budget
    longest = [lengths[b].max().item() for b in batches]
    few, many = (
        len(b) for b in (batches[longest.index(max(longest))], batches[longest.index(min(longest))])
    )
    assert few < 16 < many  # long examples come in smaller batches, short ones in larger
    assert 0.8 < len(batches) / (3000 / 16) < 1.25  # about as many steps as batches of 16
    again = sample(1, 3000)
    assert all(torch.equal(a, b) for a, b in zip(batches, again, strict=True))
    other = sample(2, 3000)
    assert len(other) != len(batches) or any(
        not torch.equal(a, b) for a, b in zip(batches, other, strict=True)
    )


def test_the_module_a_package_owns(tmp_path):
    mods = tmp_path / "usr" / "share" / "sword" / "mods.d"
    mods.mkdir(parents=True)
    (mods / "web.conf").write_text("## comment\n[engWEB2015eb]\nLang=en\n")
    assert bible.module_of("sword-text-web", tmp_path) == (mods.parent, "engWEB2015eb")
    (mods / "other.conf").write_text("[Other]\n")
    with pytest.raises(ValueError, match="cannot tell"):
        bible.module_of("sword-text-web", tmp_path)


def test_the_task_round_trips_through_its_config_and_refuses_bad_input():
    task = tr.TranslationTask.from_pairs(
        list(zip(EN, ES, strict=True)) * 5, vocab_size=60, direction="en-es"
    )
    again = tr.TranslationTask.from_config(task.to_config())
    assert again.direction == "en-es" and again.languages == ("en", "es")
    assert again.src_vocab.encode(EN[0]) == task.src_vocab.encode(EN[0])
    assert task.input_problem("   ") == "input is only whitespace"
    assert "longer than" in task.input_problem("light " * 1000)
    assert task.input_problem(EN[1]) is None
    with pytest.raises(ValueError, match="direction"):
        tr.TranslationTask(task.src_vocab, task.tgt_vocab, 10, direction="en-fr")
