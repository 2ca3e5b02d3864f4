"""Public-domain Bibles from Debian's SWORD packages, as plain-text verses.

``read_bible("web")`` gives the World English Bible (package ``sword-text-web``) as a list of
:class:`Verse` in canonical order, read with ``pysword`` from the package's files (obtained by
:mod:`attnkit.tasks.debian` when they are not installed). The OSIS markup is reduced to the
text a reader sees: footnotes, cross-references, speaker labels, section headings and the
back matter after the last book are dropped; canonical titles (the Psalms' superscriptions)
are kept as part of their verse.

Splits are by whole book (:func:`split_books`), so no verse of a held-out book is trained on.
"""

from __future__ import annotations

import functools
import html
import re
from dataclasses import dataclass
from pathlib import Path

from .debian import package_root

__all__ = [
    "BIBLES",
    "Verse",
    "clean_osis",
    "module_of",
    "read_bible",
    "read_sword",
    "split_books",
    "versification",
    "bible_versification",
]


@dataclass(frozen=True)
class Verse:
    book: str  # OSIS name: "Gen", "Matt", ...
    chapter: int
    verse: int
    text: str


@dataclass(frozen=True)
class BibleSource:
    package: str  # the Debian package
    title: str


BIBLES = {
    "web": BibleSource("sword-text-web", "World English Bible"),
    "sparv": BibleSource("sword-text-sparv", "Reina-Valera 1909"),
}

# elements whose content is not the verse's text
_DROP = re.compile(
    r"<note\b[^>]*>.*?</note>|<speaker\b[^>]*>.*?</speaker>"
    r"|<title\b(?![^>]*canonical=\"true\")[^>]*>.*?</title>",
    re.S,
)
# tags that separate words where the markup has no space (line breaks, dropped notes)
_BREAK = re.compile(r"<(?:l|lb|lg|p|item|list)\b[^>]*>|</(?:l|lg|p|item|list)>")
_TAG = re.compile(r"<[^>]*>")
_BOOK_END = re.compile(r"<div\b(?=[^>]*\btype=\"book\")(?=[^>]*\beID=)[^>]*>")
_GAP = "\x00"


def clean_osis(osis: str) -> str:
    """The text a reader sees of one verse's OSIS markup.

    >>> clean_osis('<w lemma="x">God</w><note placement="foot">Hebrew: Elohim</note>'
    ...            '<w>created</w> the <title type="section">Creation</title>heavens.')
    'God created the heavens.'
    """
    end = _BOOK_END.search(osis)
    if end:  # what follows a book's end is back matter (a glossary), not this verse
        osis = osis[: end.start()]
    text = _TAG.sub("", _BREAK.sub(_GAP, _DROP.sub(_GAP, osis)))
    text = re.sub(rf"(?<=\w){_GAP}+(?=\w)", " ", text).replace(_GAP, "")
    return " ".join(html.unescape(text).split())


def _open(sword_dir: str | Path, module: str | None):
    from pysword.modules import SwordModules

    found = SwordModules(str(sword_dir))
    names = list(found.parse_modules())
    if module is None:
        if len(names) != 1:
            raise ValueError(f"{sword_dir} holds modules {names}; name one")
        module = names[0]
    return found.get_bible_from_module(module)


def versification(sword_dir: str | Path, module: str | None = None) -> dict[str, tuple]:
    """{OSIS book: the number of verses of each chapter} in the module's versification
    scheme (KJV, NRSVA...): two Bibles number a book's verses alike only where these agree."""
    books = _open(sword_dir, module).get_structure().get_books()
    return {b.osis_name: tuple(b.chapter_lengths) for t in ("ot", "nt") for b in books.get(t, [])}


def read_sword(sword_dir: str | Path, module: str | None = None) -> list[Verse]:
    """Every non-empty verse of a SWORD module under ``sword_dir`` (the directory holding
    ``mods.d``), in canonical order; ``module`` defaults to the only one there."""
    bible = _open(sword_dir, module)
    # pysword decompresses a whole book block for every verse it reads: keep the last few
    bible._decompressed_text = functools.lru_cache(maxsize=8)(bible._decompressed_text)
    verses = []
    books = bible.get_structure().get_books()
    for testament in ("ot", "nt"):
        for book in books.get(testament, []):
            for chapter, length in enumerate(book.chapter_lengths, 1):
                for number in range(1, length + 1):
                    raw = list(
                        bible.get_iter(
                            books=[book.osis_name], chapters=[chapter], verses=[number], clean=False
                        )
                    )
                    text = clean_osis(raw[0]) if raw else ""
                    if text:
                        verses.append(Verse(book.osis_name, chapter, number, text))
    return verses


def module_of(package: str, root: Path) -> tuple[Path, str]:
    """(the SWORD directory, the module name) of ``package``'s files under ``root``. Several
    packages install into one /usr/share/sword: the module is the one whose .conf the package
    owns (dpkg's file list), or the only one in an extracted package."""
    sword = root / "usr" / "share" / "sword"
    confs = sorted((sword / "mods.d").glob("*.conf"))
    if root == Path("/"):
        listed = Path("/var/lib/dpkg/info") / f"{package}.list"
        owned = set(listed.read_text().split("\n")) if listed.is_file() else set()
        confs = [c for c in confs if str(c) in owned]
    if len(confs) != 1:
        raise ValueError(f"cannot tell which module of {sword} belongs to {package}")
    for line in confs[0].read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            return sword, line[1:-1]
    raise ValueError(f"{confs[0]} names no module")


def _source(name: str) -> BibleSource:
    if name not in BIBLES:
        raise ValueError(f"unknown Bible {name!r}; expected one of {', '.join(BIBLES)}")
    return BIBLES[name]


def _module(name: str) -> tuple[Path, str]:
    """(SWORD directory, module name) of one of ``BIBLES``, fetching its package if needed."""
    source = _source(name)
    return module_of(source.package, package_root(source.package, what=f"the {source.title}"))


@functools.lru_cache(maxsize=4)
def _read(name: str) -> tuple[Verse, ...]:
    return tuple(read_sword(*_module(name)))


def read_bible(name: str = "web") -> list[Verse]:
    """The verses of one of ``BIBLES``, fetching its Debian package if needed."""
    _source(name)  # an unknown name is refused, not cached
    return list(_read(name))


def bible_versification(name: str) -> dict[str, tuple]:
    """:func:`versification` of one of ``BIBLES``."""
    return versification(*_module(name))


def split_books(
    books: list[str],
    valid_every: int = 10,
    test_every: int = 10,
) -> tuple[list[str], list[str], list[str]]:
    """(train, validation, test) books: of each run of ``test_every`` books in canonical order
    the last is held out for test, and of each ``valid_every`` the middle one for validation,
    so every split spans both testaments and many genres.

    >>> train, valid, test = split_books([f"b{i}" for i in range(20)])
    >>> valid, test
    (['b5', 'b15'], ['b9', 'b19'])
    """
    ordered = list(dict.fromkeys(books))
    test = [b for i, b in enumerate(ordered) if i % test_every == test_every - 1]
    valid = [
        b for i, b in enumerate(ordered) if i % valid_every == valid_every // 2 and b not in test
    ]
    train = [b for b in ordered if b not in test and b not in valid]
    return train, valid, test
