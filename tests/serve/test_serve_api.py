"""The explorer's JSON API, in process: predictions equal the recipes', limits and errors are
JSON with proper statuses, and every response carries the security headers."""

import warnings

import pytest
import torch

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's note about its httpx client
    from fastapi.testclient import TestClient

from attnkit.cli import main
from attnkit.recipes import classify
from attnkit.serve import create_app
from attnkit.serve.app import CSP, MAX_BODY


@pytest.fixture(scope="module")
def client(served):
    return TestClient(create_app(served))


def test_models_and_cards(client):
    listed = client.get("/api/models").json()
    assert [m["name"] for m in listed] == [
        "times-rnn",
        "times-transformer",
        "reviews",
        "digits-caption",
        "cbam",
        "bars",
    ]
    assert [m["transformer"] for m in listed] == [False, True, False, False, False, False]
    assert [m["kind"] for m in listed][-3:] == ["captioner", "image-classifier", "prices"]
    card = client.get("/api/models/times-transformer").json()
    assert card["layers"] == 2 and card["heads"] == 2 and card["model"] == "transformer"
    assert "vocab" not in client.get("/api/models/reviews").json()["task"]


@pytest.mark.reference
def test_seq2seq_predictions_are_the_tasks_own(client, served):
    run = served["times-rnn"].run
    ((out, weights),) = run.task.predict(run.model, ["7:45 pm"], beam=2)
    got = client.post("/api/predict", json={"model": "times-rnn", "text": "7:45 pm", "beam": 2})
    data = got.json()
    assert got.status_code == 200 and data["output"] == out
    torch.testing.assert_close(torch.tensor(data["weights"]), weights.float(), atol=1e-5, rtol=0)
    assert len(data["input_tokens"]) == weights.shape[1]
    assert len(data["output_tokens"]) == weights.shape[0]


@pytest.mark.property
def test_transformer_heads_are_distributions_over_the_input(client):
    data = client.post("/api/predict", json={"model": "times-transformer", "text": "7:45 pm"})
    layers = torch.tensor(data.json()["layers"])  # (layers, heads, rows, cols)
    assert layers.shape[:2] == (2, 2) and layers.shape[3] == len("7:45 pm")
    torch.testing.assert_close(layers.sum(-1), torch.ones(layers.shape[:3]), atol=1e-4, rtol=0)


def test_classifier_predictions_explain_the_input_words(client, served):
    data = client.post("/api/predict", json={"model": "reviews", "text": "a superb plot"}).json()
    expected = classify.explain(served["reviews"].run, "a superb plot").to_json()
    assert data["label"] == expected["label"]
    assert [w["word"] for w in data["sentences"][0]] == ["a", "superb", "plot"]
    assert data["probabilities"] == pytest.approx(expected["probabilities"], abs=1e-6)


@pytest.mark.reference
def test_captioner_predictions_are_the_recipes_own(client, served):
    from attnkit.recipes import caption

    run = served["digits-caption"].run
    test = caption.test_data(run)
    ((out, tokens, weights),) = caption.caption(run, test.captions.x[3], beam=2)
    data = client.post("/api/predict", json={"model": "digits-caption", "text": "3", "beam": 2})
    assert data.status_code == 200
    data = data.json()
    assert data["output"] == out and data["truth"] == test.captions.strings[3]
    torch.testing.assert_close(torch.tensor(data["weights"]), weights.float(), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        torch.tensor(data["image"]), test.captions.x[3, 0], atol=1e-4, rtol=0
    )
    assert data["output_tokens"] == tokens and len(tokens) == len(weights)
    assert data["boxes"] == [list(b) for b in test.captions.boxes[3]]


@pytest.mark.reference
def test_image_classifier_predictions_are_the_recipes_own(client, served):
    from attnkit.recipes import vision

    run = served["cbam"].run
    test = vision.dataset("digits").test
    probs, stages = vision.maps(run, test.x[7:8])
    data = client.post("/api/predict", json={"model": "cbam", "text": "7"}).json()
    classes = run.config["task"]["classes"]
    assert data["output"] == classes[int(probs[0].argmax())]
    assert data["truth"] == classes[int(test.y[7])]
    assert list(data["probabilities"].values()) == pytest.approx(probs[0].tolist(), abs=1e-5)
    torch.testing.assert_close(torch.tensor(data["image"]), test.x[7, 0], atol=1e-4, rtol=0)
    assert len(data["stages"]) == len(stages)
    for got, (channel, spatial) in zip(data["stages"], stages, strict=True):
        torch.testing.assert_close(torch.tensor(got["spatial"]), spatial[0, 0], atol=1e-5, rtol=0)
        torch.testing.assert_close(
            torch.tensor(got["channels"]), channel[0].flatten(), atol=1e-5, rtol=0
        )


@pytest.mark.reference
def test_price_predictions_are_the_recipes_own(client, served, checkpoints):
    import numpy as np

    from attnkit.recipes import price_train
    from attnkit.tasks import prices as pr

    run = served["bars"].run
    bars = pr.read_ohlcv(checkpoints / "bars.csv")
    frame = price_train.predict(run, bars)
    ends = np.arange(*run.task["splits"][2])
    data = client.post("/api/predict", json={"model": "bars", "text": "5"}).json()
    row = frame.loc[bars.index[ends[5]]]
    assert data["time"] == str(bars.index[ends[5]]) and data["test_windows"] == len(ends)
    assert list(data["probabilities"].values()) == pytest.approx(
        [row["p_none"], row["p_buy"], row["p_sell"]], abs=1e-5
    )
    assert data["position"] == row["position"]
    assert data["truth"] == pr.FRACTAL_CLASSES[int(pr.targets(bars, "fractal")[ends[5]])]
    assert data["closes"] == pytest.approx(bars["close"].iloc[ends[5] - 19 : ends[5] + 1].tolist())
    weights = torch.tensor(data["weights"])  # (heads, window): the last bar's distribution
    assert weights.shape == (2, 20) and (weights >= 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(2), atol=1e-4, rtol=0)
    far = client.post("/api/predict", json={"model": "bars", "text": str(len(ends))})
    assert far.status_code == 422 and "a window of its test split" in far.json()["error"]


@pytest.mark.bad_input
@pytest.mark.parametrize("text", ["x", "-1", "2000", "1.5"])
def test_a_captioner_reads_only_a_test_image_index(client, text):
    got = client.post("/api/predict", json={"model": "digits-caption", "text": text})
    assert got.status_code == 422 and "index of a test image: 0..1999" in got.json()["error"]


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"model": "nope", "text": "7:45"}, 404, "no model"),
        ({"model": "times-rnn", "text": ""}, 422, "empty"),
        ({"model": "times-rnn", "text": "x" * 1001}, 422, "at most 1000"),
        ({"model": "times-rnn", "text": "7:45", "beam": 9}, 422, "beam"),
        ({"model": "times-rnn", "text": "☃"}, 422, "never saw"),
        ({"model": "../etc/passwd", "text": "1"}, 404, "no model"),
        ({"text": "1"}, 422, "model"),
    ],
)
def test_bad_requests_get_json_errors(client, body, status, message):
    got = client.post("/api/predict", json=body)
    assert got.status_code == status and message in got.json()["error"]
    assert got.headers["content-security-policy"] == CSP


@pytest.mark.bad_input
def test_oversized_and_malformed_bodies(client):
    big = client.post(
        "/api/predict",
        content=b"{" + b" " * MAX_BODY + b"}",
        headers={"content-type": "application/json"},
    )
    assert big.status_code == 413 and "bytes" in big.json()["error"]
    bad = client.post(
        "/api/predict", content=b"{oops", headers={"content-type": "application/json"}
    )
    assert bad.status_code == 422 and "error" in bad.json()
    assert client.get("/static/secrets.py").status_code == 404
    assert client.get("/api/models/nope").status_code == 404


def test_the_page_and_its_assets_carry_the_policy(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert page.headers["content-security-policy"] == CSP and "'unsafe-inline'" not in CSP
    assert '<script src="/static/app.js"' in page.text and "http" not in page.text.lower()
    script = client.get("/static/app.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "http://" not in script.text and "https://" not in script.text  # no external requests


@pytest.mark.bad_input
def test_serve_refuses_what_it_cannot_show(checkpoints, tmp_path, capsys):
    assert main(["serve"]) == 2
    assert "name the checkpoints" in capsys.readouterr().err
    assert main(["serve", "--checkpoint", str(tmp_path)]) == 2
    assert "is not a checkpoint" in capsys.readouterr().err
    assert main(["serve", "--runs", str(tmp_path / "none")]) == 2
    assert "not a directory" in capsys.readouterr().err
