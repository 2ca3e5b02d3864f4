"""Data that ships in Debian packages, obtained by the project itself.

``package_root(name)`` is a directory under which the package's files lie at their installed
paths (``/`` for an installed package). In order: an installed package; an earlier extraction
in the cache; ``apt-get install`` when running as root; ``apt-get download`` + ``dpkg-deb -x``
into the cache, which needs no root. Where none of these works, one line says how to get it.

The cache is ``$ATTNKIT_CACHE`` or ``~/.cache/attnkit``; each package is extracted into a
temporary directory and renamed into place, so an interrupted extraction is never used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["CACHE_ENV", "MissingPackageError", "cache_dir", "package_root"]

CACHE_ENV = "ATTNKIT_CACHE"


class MissingPackageError(FileNotFoundError):
    """A Debian package the data needs is not here and could not be fetched."""


def cache_dir() -> Path:
    """Where attnkit keeps data it fetched or derived: $ATTNKIT_CACHE or ~/.cache/attnkit."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "attnkit")


def run_command(*cmd: str, cwd: str | Path | None = None) -> bool:
    """Whether ``cmd`` ran and exited 0 (output captured, at most 15 minutes)."""
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, timeout=900, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def installed(package: str) -> bool:
    """Whether dpkg lists ``package`` as installed."""
    if shutil.which("dpkg-query") is None:
        return False
    try:
        done = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", package],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and done.stdout.strip().endswith("installed")


def package_root(package: str, *, what: str | None = None, install: bool = True) -> Path:
    """A directory holding ``package``'s files at their installed paths (see the module
    docstring); MissingPackageError naming the commands that get it, if none works.
    ``what`` describes the data in that message."""
    if installed(package):
        return Path("/")
    target = cache_dir() / "debian" / package
    if target.is_dir():
        return target
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    if install and root and shutil.which("apt-get") and _apt_install(package):
        return Path("/")
    if shutil.which("apt-get") and shutil.which("dpkg-deb") and _extract(package, target):
        return target
    about = f"{what} comes from" if what else "this needs"
    raise MissingPackageError(
        f"{about} the Debian package {package}, which is not installed and could not be "
        f"fetched: run `sudo apt-get install {package}`, or `apt-get download {package}` and "
        f"`dpkg-deb -x {package}_*.deb {target}`"
    )


def _apt_install(package: str) -> bool:
    return run_command("apt-get", "install", "-y", "-q", "--no-install-recommends", package) and (
        installed(package)
    )


def _extract(package: str, target: Path) -> bool:
    """apt-get download + dpkg-deb -x into ``target`` (atomically); False if either fails."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{package}-") as tmp:
        if not run_command("apt-get", "download", package, cwd=tmp):
            return False
        debs = sorted(Path(tmp).glob(f"{package}_*.deb"))
        files = Path(tmp) / "root"
        if len(debs) != 1 or not run_command("dpkg-deb", "-x", str(debs[0]), str(files)):
            return False
        try:
            files.rename(target)
        except OSError:  # another process got there first
            return target.is_dir()
    return True
