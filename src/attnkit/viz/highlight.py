"""Words highlighted by weight: in a terminal (ANSI colours) and as a self-contained HTML page.

Both read an explanation as plain data (``attnkit.recipes.classify.Explanation.to_json()``):
``{"label", "probabilities": {class: p}, "sentences": [[{"word", "weight", "attribution"}]],
"sentence_weights"}``. Attention weights (>= 0) shade a word yellow in proportion to the
largest weight; attributions shade it green where they support the predicted class and red
where they oppose it, in proportion to the largest magnitude.

>>> data = {"label": "fresh", "probabilities": {"rotten": 0.1, "fresh": 0.9},
...         "sentences": [[{"word": "a", "weight": 0.2, "attribution": -0.1},
...                        {"word": "gem", "weight": 0.8, "attribution": 1.5}]],
...         "sentence_weights": None}
>>> print(render_explanation(data, color=False))
prediction: fresh (0.900); rotten 0.100
attention:    a[.20] gem[.80]
attribution:  a[-0.1] gem[+1.5]
>>> "<script" in explanation_html(data, "x")
False
"""

from __future__ import annotations

import html
from typing import Any

from .._text import printable

__all__ = ["explanation_html", "render_explanation"]


def _scale(values: list[float | None]) -> float:
    top = max((abs(v) for v in values if v is not None), default=0.0)
    return top or 1.0


def _ansi(word: str, value: float, top: float, signed: bool) -> str:
    share = min(abs(value) / top, 1.0)
    if signed:
        rgb = (
            (255, int(255 * (1 - share)), int(255 * (1 - share)))
            if value < 0
            else (int(255 * (1 - share)), 255, int(255 * (1 - share)))
        )
    else:
        rgb = (255, 255, int(255 * (1 - share)))
    return f"\x1b[48;2;{rgb[0]};{rgb[1]};{rgb[2]}m\x1b[38;2;0;0;0m{word}\x1b[0m"


def _line(words: list[dict], key: str, color: bool, signed: bool, top: float) -> str:
    parts = []
    for w in words:
        value, word = w[key], printable(w["word"])  # the user's text: its escapes escaped
        if color:
            parts.append(_ansi(word, value, top, signed))
        elif signed:
            parts.append(f"{word}[{value:+.2g}]")
        else:
            parts.append(f"{word}[{value:.2f}]".replace("[0.", "[.").replace("[1.00]", "[1]"))
    return " ".join(parts)


def render_explanation(data: dict[str, Any], color: bool = True) -> str:
    """The prediction, then each sentence's words shaded by attention (where the model has
    weights per token) and by attribution; ``color`` False writes the values in brackets."""
    probs = data["probabilities"]
    label = data["label"]
    others = "; ".join(f"{printable(c)} {p:.3f}" for c, p in probs.items() if c != label)
    shown = f"prediction: {printable(label)} ({probs[label]:.3f})"
    lines = [shown + (f"; {others}" if others else "")]
    words = [w for s in data["sentences"] for w in s]
    has_weights = all(w["weight"] is not None for w in words)
    top_w = _scale([w["weight"] for w in words]) if has_weights else 1.0
    top_g = _scale([w["attribution"] for w in words])
    sent_w = data.get("sentence_weights")
    for i, sentence in enumerate(data["sentences"]):
        if sent_w is not None:
            lines.append(f"sentence {i + 1} (weight {sent_w[i]:.2f})")
        if has_weights:
            lines.append("attention:    " + _line(sentence, "weight", color, False, top_w))
        lines.append("attribution:  " + _line(sentence, "attribution", color, True, top_g))
    return "\n".join(lines)


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 60em; color: #111; }
h1 { font-size: 1.3em; } h2 { font-size: 1.05em; margin-top: 1.5em; }
.text { line-height: 2.1; } .w { padding: 0.15em 0.2em; border-radius: 3px; }
.sent { display: flex; gap: 0.8em; align-items: baseline; margin: 0.3em 0; }
.bar { flex: none; width: 4em; font-size: 0.8em; color: #555; }
table { border-collapse: collapse; } td, th { padding: 0.2em 0.8em; text-align: left; }
.legend { font-size: 0.85em; color: #555; }
"""


def _span(word: str, value: float, top: float, signed: bool, label: str) -> str:
    share = min(abs(value) / top, 1.0)
    rgb = ("220,40,40" if value < 0 else "30,160,60") if signed else "255,190,0"
    tip = html.escape(f"{label}: {value:.4g}", quote=True)
    return (
        f'<span class="w" title="{tip}" style="background: rgba({rgb},{share:.3f})">'
        f"{html.escape(word)}</span>"
    )


def _block(data: dict[str, Any], key: str, signed: bool, label: str) -> str:
    words = [w for s in data["sentences"] for w in s]
    top = _scale([w[key] for w in words])
    sent_w = data.get("sentence_weights")
    rows = []
    for i, sentence in enumerate(data["sentences"]):
        spans = " ".join(_span(w["word"], w[key], top, signed, label) for w in sentence)
        if sent_w is not None:
            bar = f'<span class="bar" title="sentence weight">{sent_w[i]:.2f}</span>'
            spans = (
                f'<div class="sent">{bar}<span style="background: rgba(80,120,255,'
                f'{min(sent_w[i] / max(sent_w), 1):.3f})">&nbsp;</span>'
                f'<div class="text">{spans}</div></div>'
            )
        rows.append(spans)
    return "\n".join(rows) if sent_w is not None else f'<p class="text">{" ".join(rows)}</p>'


def explanation_html(data: dict[str, Any], title: str = "attnkit explain") -> str:
    """A self-contained HTML page (inline style, no scripts, no external requests) of the
    explanation: the prediction, words shaded by attention weight, and by attribution."""
    probs = data["probabilities"]
    table = "".join(
        f"<tr><td>{html.escape(c)}</td><td>{p:.3f}</td></tr>"
        for c, p in sorted(probs.items(), key=lambda kv: -kv[1])
    )
    words = [w for s in data["sentences"] for w in s]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>prediction: <b>{html.escape(str(data['label']))}</b></p><table>{table}</table>",
    ]
    if all(w["weight"] is not None for w in words):
        parts += [
            "<h2>attention weight</h2>",
            '<p class="legend">darker: more weight (hover a word for its value); for a '
            "document the blue bar is the sentence's weight</p>",
            _block(data, "weight", False, "attention weight"),
        ]
    parts += [
        "<h2>integrated gradients</h2>",
        '<p class="legend">green: the word supports the prediction, red: it opposes it; '
        "darker: stronger</p>",
        _block(data, "attribution", True, "attribution"),
        "</body></html>",
    ]
    return "\n".join(parts)
