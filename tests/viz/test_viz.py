"""Pictures of attention: the PNG is written with the right labels, the terminal view matches
the weights, and matplotlib's global state is left alone."""

import matplotlib
import pytest
import torch

from attnkit.viz import heatmap_figure, render_mask, render_weights, save_heatmap
from attnkit.viz.terminal import SHADES


def test_save_heatmap_writes_a_png_labelled_with_the_characters(tmp_path):
    w = torch.softmax(torch.randn(3, 3), -1)
    path = save_heatmap(w, "a b", "XY⏎", tmp_path / "sub" / "map.png", title="a b")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ax = heatmap_figure(w, "a b", "XY⏎").axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "␣", "b"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["X", "Y", "⏎"]
    torch.testing.assert_close(torch.as_tensor(ax.images[0].get_array()), w)


def test_save_heatmap_leaves_the_backend_and_pyplot_alone(tmp_path):
    import matplotlib.pyplot as plt

    before = matplotlib.get_backend()
    plt.switch_backend("svg")
    try:
        save_heatmap(torch.eye(2), "ab", "AB", tmp_path / "a.png")
        assert matplotlib.get_backend() == "svg" and plt.get_fignums() == []
    finally:
        plt.switch_backend(before)


@pytest.mark.bad_input
def test_save_heatmap_refuses_labels_that_do_not_fit(tmp_path):
    with pytest.raises(ValueError, match="do not match 2 outputs x 3 inputs"):
        save_heatmap(torch.eye(2), "abc", "AB", tmp_path / "a.png")


def test_terminal_rows_follow_the_weights():
    w = torch.tensor([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5], [0.0, 0.3, 0.7]])
    lines = render_weights(w, ["x", "y", "z"], ["a", "b", "c"]).splitlines()
    assert lines[0] == "  |abc|" and lines[1] == "  +---+"
    rows = {line[0]: line[3:6] for line in lines[2:]}
    assert rows["x"] == f"{SHADES[0]}{SHADES[-1]}{SHADES[0]}"
    assert rows["y"] == f"{SHADES[-1]}{SHADES[0]}{SHADES[-1]}"
    assert rows["z"] == f"{SHADES[0]}{SHADES[2]}{SHADES[4]}"  # shade by weight / row maximum


def test_render_mask_draws_the_matrix():
    assert render_mask(torch.tensor([[True, False], [True, True]])) == "1 .\n1 1"


def test_cjk_and_cyrillic_labels_are_drawn_as_glyphs_by_a_font_that_has_them():
    """The fallback chain (DejaVu Sans, then the packaged IPAexGothic, then system CJK fonts)
    gives every character of Chinese and Russian dates a glyph; none is shown as a code point,
    and the font that draws each label really has it."""
    from matplotlib.font_manager import findfont
    from matplotlib.ft2font import FT2Font

    from attnkit.viz import heatmap

    text = "2021年3月14日星期日 1 января"
    ax = heatmap_figure(torch.rand(2, len(text)), text, "ab").axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == [c if c != " " else "␣" for c in text]
    fonts = [name for name, _ in heatmap._available_fonts()]
    assert "IPAexGothic" in fonts  # from the [plot] extra's matplotlib-fontja
    tick = ax.get_xticklabels()[4]  # 年
    assert tick.get_fontfamily()[: len(fonts)] == fonts
    assert any(FT2Font(findfont(f)).get_char_index(ord("年")) for f in fonts)


def test_a_character_no_font_has_is_labelled_by_its_code_point():
    from attnkit.viz import heatmap

    assert heatmap._label("\U0001f9ff") in ("\U0001f9ff", "U+1F9FF")
    assert heatmap._label("\ue000") == "U+E000"  # private use: no font draws it


def test_terminal_grid_stays_aligned_with_wide_characters():
    from attnkit.viz.terminal import ljust, width

    art = render_weights(torch.rand(3, 6), ["2", "0", "⏎"], list("3月14日x"))
    lines = art.splitlines()
    assert len({width(line) for line in lines}) == 1, art  # every line as wide as the others
    assert width("2021年3月14日") == 13 and width(ljust("年", 4)) == 4
    assert lines[0].startswith("  |3 月1 4 日x ")


def test_head_grid_draws_every_head_on_one_scale(tmp_path):
    from attnkit.viz import head_grid_figure, save_head_grid

    weights = torch.rand(5, 3, 4).softmax(-1)
    fig = head_grid_figure(weights, "abcd", "xyz", title="layer 0")
    panels = [ax for ax in fig.axes if ax.get_title().startswith("head")]
    assert [ax.get_title() for ax in panels] == [f"head {h}" for h in range(5)]
    limits = {ax.images[0].get_clim() for ax in panels}
    assert len(limits) == 1 and max(limits)[1] == pytest.approx(float(weights.max()))
    assert save_head_grid(weights, "abcd", "xyz", tmp_path / "g.png").stat().st_size > 0
    with pytest.raises(ValueError, match="do not match"):
        head_grid_figure(weights, "abc", "xyz")


def test_word_labels_are_slanted_so_they_do_not_overlap_and_characters_stay_upright():
    words = ["He", "arose", "and", "took", "the", "young", "child"]
    slanted = heatmap_figure(torch.rand(2, len(words)), words, ["Y", "tomó"]).axes[0]
    upright = heatmap_figure(torch.rand(2, 3), "abc", "xy").axes[0]
    assert {t.get_rotation() for t in slanted.get_xticklabels()} == {60.0}
    assert {t.get_horizontalalignment() for t in slanted.get_xticklabels()} == {"right"}
    assert {t.get_rotation() for t in upright.get_xticklabels()} == {0.0}
