"""The explorer in a real browser: the server runs on localhost, Debian's chromium (headless,
driven by Selenium through chromedriver) types an input, and the heatmap's pixels must give back
the weights the API returns; hovering a cell shows its value. Screenshots are saved in
``test-artifacts/`` (or ``$ATTNKIT_ARTIFACTS``).

Without chromium and chromedriver these tests are skipped, unless ``ATTNKIT_REQUIRE_BROWSER``
is set (as ``.ci/run`` sets it, after installing them): then a missing browser fails them.
"""

import json
import os
import shutil
import socket
import threading
import time
import warnings
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
ARTIFACTS = Path(
    os.environ.get("ATTNKIT_ARTIFACTS") or Path(__file__).parents[2] / "test-artifacts"
)

if not (CHROMIUM and DRIVER):
    if os.environ.get("ATTNKIT_REQUIRE_BROWSER"):
        raise RuntimeError(
            "ATTNKIT_REQUIRE_BROWSER is set but chromium or chromedriver is "
            "missing: apt-get install chromium chromium-driver"
        )
    pytest.skip(
        "no chromium/chromedriver (apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )

import uvicorn  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402

from attnkit.serve import create_app  # noqa: E402

pytestmark = pytest.mark.slow


def colour(w):
    """The page's colour of weight w (app.js: white mixed with deep blue)."""
    v = min(max(w, 0.0), 1.0)
    return [round(255 - v * 247), round(255 - v * 207), round(255 - v * 148)]


@pytest.fixture(scope="module")
def server(served):
    app = create_app(served)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", TestClient(app)
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
        "--force-device-scale-factor=1",
    ):
        opts.add_argument(arg)
    driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(DRIVER))
    yield driver
    driver.quit()


def _ask(browser, url, model, text, compare=""):
    browser.get(url)
    WebDriverWait(browser, 30).until(
        lambda d: d.execute_script("return document.body.dataset.ready")
    )
    Select(browser.find_element(By.ID, "model-a")).select_by_value(model)
    Select(browser.find_element(By.ID, "model-b")).select_by_value(compare)
    box = browser.find_element(By.ID, "text")
    box.clear()
    box.send_keys(text)
    browser.find_element(By.ID, "go").click()
    WebDriverWait(browser, 60).until(
        lambda d: d.execute_script("return document.body.dataset.state") == "done"
    )
    error = browser.find_element(By.ID, "error")
    assert not error.is_displayed(), error.text


def _shown(server, browser, model, text):
    """Ask the page for ``model``'s prediction of ``text``; the API's answer to the same."""
    url, client = server
    _ask(browser, url, model, text)
    return client.post("/api/predict", json={"model": model, "text": text}).json()


def _pixels(browser, canvas):
    """The colour at every cell's centre, and the canvas's geometry."""
    return browser.execute_script(
        """const c = arguments[0], d = c.dataset, ctx = c.getContext('2d'), out = [];
        for (let i = 0; i < +d.rows; i++) { const row = [];
          for (let j = 0; j < +d.cols; j++) {
            const p = ctx.getImageData(+d.left + j * d.cell + d.cell / 2,
                                       +d.top + i * d.cell + d.cell / 2, 1, 1).data;
            row.push([p[0], p[1], p[2]]); }
          out.push(row); }
        return {pixels: out, left: +d.left, top: +d.top, cell: +d.cell,
                width: c.width, height: c.height};""",
        canvas,
    )


def _shot(browser, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / f"explorer-{name}.png"))


def _drawn_as(browser, canvas, weights):
    """The heatmap ``canvas`` shows ``weights`` (rows x cols) cell by cell."""
    got = _pixels(browser, canvas)
    assert len(got["pixels"]) == len(weights) and len(got["pixels"][0]) == len(weights[0])
    for row, expected in zip(got["pixels"], weights, strict=True):
        for pixel, w in zip(row, expected, strict=True):
            assert all(abs(a - b) <= 1 for a, b in zip(pixel, colour(w), strict=True)), (pixel, w)
    return got


def test_the_rnn_heatmap_is_drawn_with_the_apis_weights(server, browser):
    url, client = server
    _ask(browser, url, "times-rnn", "7:45 pm")
    weights = client.post("/api/predict", json={"model": "times-rnn", "text": "7:45 pm"})
    weights = weights.json()["weights"]
    canvas = browser.find_element(By.CSS_SELECTOR, ".panel canvas.heatmap")
    got = _drawn_as(browser, canvas, weights)
    # hover the cell of the largest weight in the first row: the tooltip gives its value
    j = max(range(len(weights[0])), key=weights[0].__getitem__)
    x = got["left"] + j * got["cell"] + got["cell"] / 2 - got["width"] / 2
    y = got["top"] + got["cell"] / 2 - got["height"] / 2
    ActionChains(browser).move_to_element_with_offset(canvas, int(x), int(y)).perform()
    tip = browser.find_element(By.ID, "tip")
    WebDriverWait(browser, 10).until(lambda d: tip.is_displayed())
    assert f"{weights[0][j]:.4f}" in tip.text
    _shot(browser, "rnn")


def test_transformer_layers_heads_and_side_by_side(server, browser):
    url, client = server
    _ask(browser, url, "times-transformer", "7:45 pm", compare="times-rnn")
    panels = browser.find_elements(By.CSS_SELECTOR, ".panel")
    assert [p.get_attribute("data-model") for p in panels] == ["times-transformer", "times-rnn"]
    data = client.post("/api/predict", json={"model": "times-transformer", "text": "7:45 pm"})
    layers = data.json()["layers"]
    Select(panels[0].find_element(By.CSS_SELECTOR, "select.layer")).select_by_value("0")
    Select(panels[0].find_element(By.CSS_SELECTOR, "select.head")).select_by_value("1")
    canvas = panels[0].find_element(By.CSS_SELECTOR, "canvas.heatmap")
    got = _pixels(browser, canvas)["pixels"]
    for row, expected in zip(got, layers[0][1], strict=True):
        for pixel, w in zip(row, expected, strict=True):
            assert all(abs(a - b) <= 1 for a, b in zip(pixel, colour(w), strict=True))
    Select(panels[0].find_element(By.CSS_SELECTOR, "select.head")).select_by_value("all")
    assert len(panels[0].find_elements(By.CSS_SELECTOR, "figure canvas")) == 2
    _shot(browser, "transformer-vs-rnn")


def test_classifier_words_are_highlighted_by_weight(server, browser):
    url, client = server
    _ask(browser, url, "reviews", "the plot was superb")
    data = client.post("/api/predict", json={"model": "reviews", "text": "the plot was superb"})
    words = data.json()["sentences"][0]
    spans = browser.find_elements(By.CSS_SELECTOR, ".words.weight .word")
    assert [s.text for s in spans] == ["the", "plot", "was", "superb"]
    for span, w in zip(spans, words, strict=True):
        assert float(span.get_attribute("data-value")) == pytest.approx(w["weight"], abs=1e-6)
    assert (
        "prediction: " + data.json()["label"]
        in browser.find_element(By.CSS_SELECTOR, ".output").text
    )
    _shot(browser, "classifier")


def test_captioner_steps_are_drawn_over_the_image(server, browser):
    data = _shown(server, browser, "digits-caption", "5")
    canvases = browser.find_elements(By.CSS_SELECTOR, ".caption-steps canvas")
    assert len(canvases) == 1 + len(data["output_tokens"])  # the image, then one per token
    for k, canvas in enumerate(canvases[1:]):
        assert canvas.get_attribute("data-step") == str(k)
        assert json.loads(canvas.get_attribute("data-weights")) == data["weights"][k]
    text = browser.find_element(By.CSS_SELECTOR, ".output").text
    assert f"truth {data['truth']}" in text
    _shot(browser, "captioner")


def test_a_price_windows_attention_over_its_bars_is_drawn(server, browser):
    data = _shown(server, browser, "bars", "3")
    _drawn_as(
        browser, browser.find_element(By.CSS_SELECTOR, "canvas.bars-attention"), data["weights"]
    )
    assert browser.find_element(By.CSS_SELECTOR, "canvas.closes").is_displayed()
    text = browser.find_element(By.CSS_SELECTOR, ".output").text
    assert data["time"] in text and f"truth {data['truth']}" in text
    _shot(browser, "prices")


def test_an_image_classifiers_maps_are_drawn_over_the_image(server, browser):
    data = _shown(server, browser, "cbam", "4")
    spatial = browser.find_elements(By.CSS_SELECTOR, ".image-maps canvas[data-stage]")
    assert [json.loads(c.get_attribute("data-weights")) for c in spatial] == [
        s["spatial"] for s in data["stages"]
    ]
    rows = browser.find_elements(By.CSS_SELECTOR, ".image-maps canvas.channels")
    for canvas, stage in zip(rows, data["stages"], strict=True):
        top = max(stage["channels"])
        _drawn_as(browser, canvas, [[w / top for w in stage["channels"]]])
    assert f"truth {data['truth']}" in browser.find_element(By.CSS_SELECTOR, ".output").text
    _shot(browser, "image-classifier")


def test_an_error_is_shown_on_the_page(server, browser):
    url, _ = server
    browser.get(url)
    WebDriverWait(browser, 30).until(
        lambda d: d.execute_script("return document.body.dataset.ready")
    )
    browser.find_element(By.ID, "text").send_keys("☃☃")
    browser.find_element(By.ID, "go").click()
    error = browser.find_element(By.ID, "error")
    WebDriverWait(browser, 30).until(lambda d: error.is_displayed())
    assert "never saw" in error.text
    logs = [
        e
        for e in browser.get_log("browser")
        if e["level"] == "SEVERE" and "422" not in e["message"]
    ]
    assert not logs, logs  # no CSP violation, no script error
