"""The language-model task and where its text comes from: OSIS cleaning, book splits, the
Debian package fetcher (with stand-in apt tools), windows and bits per character."""

import math
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import torch

from attnkit.tasks import bible, debian, lm
from attnkit.tasks.lm import LMTask, TextWindows, corpus_from_text


@pytest.mark.parametrize(
    ("osis", "text"),
    [
        (
            '<w lemma="a">God</w><note placement="foot">x <reference>1:1</reference></note>'
            "<w>created</w>.",
            "God created.",
        ),  # a note between two words leaves a space
        ("earth.<note>a note</note> The", "earth. The"),
        (
            '<title canonical="true" type="psalm">A Psalm.</title> <l level="1"/>Yahweh',
            "A Psalm. Yahweh",
        ),  # canonical titles are text
        ('<title type="section">Heading</title>Text', "Text"),
        ("<speaker>Beloved</speaker> Let him", "Let him"),
        ('Amen. <div eID="b1" type="book"/> <div type="glossary"/>Glossary entries', "Amen."),
        ("one<l/>two &amp; three", "one two & three"),
    ],
)
def test_osis_is_reduced_to_what_a_reader_sees(osis, text):
    assert bible.clean_osis(osis) == text


def test_book_splits_are_disjoint_and_cover_every_book():
    books = [f"B{i}" for i in range(83)]
    train, valid, test = bible.split_books(books + books[:5])  # repeats count once
    assert sorted(train + valid + test) == sorted(books)
    assert not set(train) & set(valid) and not set(train) & set(test)
    assert len(test) == 8 and len(valid) == 8  # both testaments: spread over the whole order
    assert books.index(test[0]) < 20 and books.index(test[-1]) > 60


def _fake_tools(tmp_path: Path, deb: Path | None, install_ok: bool = False) -> str:
    """A PATH whose apt-get downloads ``deb`` (and refuses to install) and whose dpkg-query
    knows no package, in front of the real one (dpkg-deb, cp, tar)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    apt = f"""#!/bin/sh
if [ "$1" = download ] && [ -n "{deb or ""}" ]; then cp "{deb}" .; exit 0; fi
exit {0 if install_ok else 1}
"""
    for name, body in {"apt-get": apt, "dpkg-query": "#!/bin/sh\nexit 1\n"}.items():
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(stat.S_IRWXU)
    return f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"


def _tiny_deb(tmp_path: Path, package: str) -> Path:
    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "usr/share/demo").mkdir(parents=True)
    (root / "usr/share/demo/verse.txt").write_text("In the beginning\n")
    (root / "DEBIAN/control").write_text(
        f"Package: {package}\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@t>\n"
        "Description: test\n"
    )
    deb = tmp_path / f"{package}_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--build", str(root), str(deb)], check=True, capture_output=True)
    return deb


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb (Debian)")
def test_a_missing_package_is_downloaded_and_extracted_into_the_cache(tmp_path, monkeypatch):
    deb = _tiny_deb(tmp_path, "attnkit-demo-data")
    monkeypatch.setenv("PATH", _fake_tools(tmp_path, deb))
    monkeypatch.setenv(debian.CACHE_ENV, str(tmp_path / "cache"))
    root = debian.package_root("attnkit-demo-data")
    assert root == tmp_path / "cache/debian/attnkit-demo-data"
    assert (root / "usr/share/demo/verse.txt").read_text() == "In the beginning\n"
    deb.unlink()  # the second call uses the cache, not apt
    assert debian.package_root("attnkit-demo-data") == root
    assert not [p for p in root.parent.iterdir() if p.name.startswith(".")]  # no temp left


def test_a_package_that_cannot_be_had_is_one_line_saying_how(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", _fake_tools(tmp_path, None))
    monkeypatch.setenv(debian.CACHE_ENV, str(tmp_path / "cache"))
    with pytest.raises(debian.MissingPackageError) as err:
        debian.package_root("sword-text-web", what="the World English Bible")
    message = str(err.value)
    assert "\n" not in message and "apt-get install sword-text-web" in message
    assert message.startswith("the World English Bible comes from the Debian package")
    assert isinstance(err.value, FileNotFoundError)  # the command line prints it in one line


def test_windows_give_every_held_out_character_once():
    task = LMTask.from_text("abcdefghij" * 3, context=4)
    data = task.dataset("abcdefghij" * 2 + "abc")  # 23 ids: 22 predicted
    targets = torch.cat([b.tokens[:, 1:].flatten() for b in data.windows(batch_size=2)])
    assert len(targets) == 22
    assert task.vocab.decode(targets.tolist()) == ("abcdefghij" * 2 + "abc")[1:]
    for batch in data.windows(batch_size=2):
        assert batch.tokens.shape[1] <= 5  # context + 1


def test_training_windows_start_anywhere_valid():
    data = TextWindows(torch.arange(10), context=4, per_epoch=7)
    batch = data.batch(torch.tensor([0, 5, 6, 100]))
    assert batch.tokens.shape == (4, 5) and int(batch.tokens.max()) <= 9
    assert batch.tokens[1].tolist() == [5, 6, 7, 8, 9] and len(data) == 7


class Uniform(torch.nn.Module):
    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.vocab = vocab

    def forward(self, ids):
        return torch.zeros(*ids.shape, self.vocab)


def test_bits_per_character_of_a_uniform_model_is_log2_of_the_vocabulary():
    task = LMTask.from_text("abcd", context=3)
    result = task.evaluate(Uniform(len(task.vocab)), task.dataset("abcdabcdab"))
    assert result["chars"] == 9
    assert result["bits_per_char"] == pytest.approx(math.log2(len(task.vocab)))


def test_a_user_text_splits_at_line_ends_in_order():
    text = "".join(f"line {i}\n" for i in range(400))
    corpus = corpus_from_text(text, {"file": "x.txt"})
    assert corpus.train + corpus.valid + corpus.test == text
    assert corpus.train.endswith("\n") and corpus.valid.endswith("\n")
    assert len(corpus.train) / len(text) == pytest.approx(0.9, abs=0.02)
    with pytest.raises(ValueError, match="at least 100"):
        corpus_from_text("too short")


def test_the_task_round_trips_through_its_config():
    task = LMTask.from_text("héllo wörld", context=8)
    again = lm.LMTask.from_config(task.to_config())
    assert again.vocab.to_list() == task.vocab.to_list() and again.context == 8
    with pytest.raises(ValueError, match="outside the vocabulary"):
        task.encode("xyz")
