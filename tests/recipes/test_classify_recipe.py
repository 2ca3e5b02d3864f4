"""The classification recipe on a tiny corpus: training through the generic trainer, the TF-IDF
baseline, reload, the attention weights per token, and integrated gradients (completeness)."""

import random

import pytest
import torch

from attnkit.recipes import classify as recipe
from attnkit.tasks import classify as tc
from reference import FILLER, one_cue_review

pytestmark = pytest.mark.usefixtures("one_thread")


def _corpus(n=240, documents=False, seed=0):
    rng = random.Random(seed)

    def example(label):
        if not documents:
            return tc.LabelledText(one_cue_review(rng, label), label)
        k = rng.randint(1, 3)  # one sentence carries the label, the others are filler
        sents = [" ".join(rng.choices(FILLER, k=rng.randint(3, 7))) + "." for _ in range(k)]
        sents.insert(rng.randrange(k + 1), one_cue_review(rng, label) + ".")
        return tc.LabelledText(tuple(sents), label)

    rows = [example(i % 2) for i in range(n)]
    return tc.TextCorpus(
        ("bad", "good"),
        rows[: n * 3 // 4],
        rows[n * 3 // 4 :],
        [example(i % 2) for i in range(60)],
        documents,
    )


SMALL = {
    "embed_dim": 16,
    "hidden_dim": 16,
    "attention_dim": 16,
    "dropout": 0.0,
    "epochs": 8,
    "batch_size": 16,
    "lr": 1e-2,
    "progress": False,
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    runs = {}
    torch.set_num_threads(1)
    for pooling in ("attention", "han"):
        out = tmp_path_factory.mktemp(pooling)
        corpus = _corpus(documents=pooling == "han")
        runs[pooling] = (
            recipe.train(
                out=out, pooling=pooling, corpus=corpus, vocab_size=60, log=lambda *a: None, **SMALL
            ),
            corpus,
            out,
        )
    return runs


@pytest.mark.parametrize("pooling", ["attention", "han"])
def test_a_classifier_learns_the_corpus_and_reloads_identically(trained, pooling):
    run, corpus, out = trained[pooling]
    scores = recipe.evaluate(run, corpus.test)
    assert scores["accuracy"] > 0.9 and scores["macro_f1"] > 0.9 and scores["n"] == 60
    again = recipe.load(out)
    texts = [ex.text for ex in corpus.test[:10]]
    assert torch.equal(recipe.predict(run, texts), recipe.predict(again, texts))
    assert run.config["data"]["given"] and run.config["task"]["documents"] == (pooling == "han")


def test_the_baseline_separates_the_corpus_and_picks_its_c_on_validation():
    corpus = _corpus()
    base = recipe.baseline(corpus, cs=(0.01, 100.0))
    assert base["accuracy"] > 0.95 and base["macro_f1"] > 0.95
    assert base["C"] in (0.01, 100.0) and base["n"] == len(corpus.test)


@pytest.mark.property
@pytest.mark.parametrize("pooling", ["attention", "han"])
def test_token_weights_sum_to_one_over_the_real_tokens(trained, pooling):
    run, corpus, _ = trained[pooling]
    batch = run.task.dataset(corpus.test[:8]).batch(torch.arange(8))
    w = recipe.token_weights(run.model, batch.ids, batch.lengths)
    assert w.shape == batch.ids.shape
    torch.testing.assert_close(w.sum(tuple(range(1, w.dim()))), torch.ones(8))
    assert w[batch.ids == 0].eq(0).all()


@pytest.mark.reference
@pytest.mark.parametrize("pooling", ["attention", "han"])
def test_integrated_gradients_are_complete(trained, pooling):
    # the attributions sum to the target logit's change from the zero embedding
    run, corpus, _ = trained[pooling]
    model = run.model
    ids, lengths = tc.pad([run.task.encode(corpus.test[3].text)], run.task.documents)
    attr = recipe.integrated_gradients(model, ids, lengths, target=1, steps=400)
    with torch.no_grad():
        full = model(ids, lengths)[0, 1]
        zero = model(ids, lengths, embeddings=torch.zeros(*ids.shape, model.cfg.embed_dim))[0, 1]
    change = float(full - zero)
    assert float(attr.sum()) == pytest.approx(change, abs=0.02 * abs(change) + 1e-3)
    assert attr[ids == 0].eq(0).all()


def test_explanations_name_the_input_words_and_point_at_the_cue(trained):
    run, _, _ = trained["attention"]
    text = "the plot was superb and the cast quite a story"
    ex = recipe.explain(run, text)
    assert [w for w, _, _ in ex.sentences[0]] == text.split()
    assert run.task.classes[ex.label] == "good"
    assert max(ex.sentences[0], key=lambda t: t[2])[0] == "superb"
    assert sum(w for _, w, _ in ex.sentences[0]) == pytest.approx(1.0, abs=1e-5)
    assert sum(ex.probs) == pytest.approx(1.0)
    data = ex.to_json()
    assert data["label"] == "good" and data["sentence_weights"] is None


def test_han_explanations_weigh_sentences(trained):
    run, _, _ = trained["han"]
    ex = recipe.explain(run, "the film was a story. it was clumsy and quite a plot. the cast.")
    assert run.task.classes[ex.label] == "bad"
    assert [len(s) for s in ex.sentences] == [5, 7, 2]
    assert sum(ex.sentence_weights) == pytest.approx(1.0, abs=1e-5)
    assert max(range(3), key=ex.sentence_weights.__getitem__) == 1


@pytest.mark.parametrize("pooling", ["attention", "han"])
def test_attention_agrees_with_attribution_on_a_task_with_one_cue(trained, pooling):
    run, corpus, _ = trained[pooling]
    got = recipe.agreement(run, corpus.test[:20], steps=16)
    assert -1 <= got["spearman_mean"] <= 1 and got["n"] == 20
    # one word decides: both rankings tend to put it first
    assert got["spearman_mean"] > 0.1 and got["positive_share"] > 0.7
    assert got["top_in_top3"] > 0.5


@pytest.mark.bad_input
def test_agreement_needs_weights_per_token(tmp_path):
    run = recipe.train(
        out=tmp_path,
        pooling="mean",
        corpus=_corpus(40),
        vocab_size=60,
        log=lambda *a: None,
        **{**SMALL, "epochs": 1},
    )
    with pytest.raises(ValueError, match="no weight per token"):
        recipe.agreement(run, _corpus(40).test)
    assert recipe.explain(run, "a superb film").sentences[0][0][1] is None
    with pytest.raises(ValueError, match="documents"):
        recipe.train(
            out=tmp_path / "h",
            pooling="han",
            corpus=_corpus(40),
            vocab_size=60,
            log=lambda *a: None,
            **SMALL,
        )
