"""Write a whole site into a staging directory, then swap it in for the previous one atomically.

Part of the site edge, stdlib only. Files whose bytes did not change are hard-linked from the
previous site (same inode, same mtime); only new or changed files are written. The swap is one
`renameat2(RENAME_EXCHANGE)` on Linux, else two renames; a failed render leaves the previous
site untouched. Renders of one output directory are serialised with an advisory lock.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import TracebackType

from monitor.models import MonitorError

MARKER = ".x402-monitor-site"
"""Written into every site: a directory without it is never replaced or deleted."""
MARKER_TEXT = b"This directory is written by x402 monitor; it is replaced on every render.\n"
LEGACY_ENTRIES = {"index.html"}
"""What the first, one-page site wrote: a directory holding only these may be replaced."""
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


class SiteError(MonitorError):
    """The site cannot be written where it was asked to be (the previous site stays)."""


@dataclass(frozen=True)
class RenderReport:
    """What one render did: files written (new or changed), kept unchanged, removed."""

    written: int
    unchanged: int
    removed: int
    seconds: float
    refused: tuple[str, ...] = ()
    """Slugs that are not safe as file names: those endpoints were left out."""

    @property
    def files(self) -> int:
        """Return the number of files of the new site."""
        return self.written + self.unchanged


def _is_site(directory: Path) -> bool:
    entries = {entry.name for entry in directory.iterdir()}
    return MARKER in entries or entries <= LEGACY_ENTRIES


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically (Linux renameat2); return False when the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    result = renameat2(
        _AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE
    )
    return bool(result == 0)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on `directory` (POSIX; a no-op elsewhere)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    handle = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # closing releases the lock


class SiteWriter:
    """Collect a new site next to `output_dir`; `commit()` swaps it in, leaving the block aborts.

    Use as a context manager: an exception inside the block removes the staging directory and
    leaves the previous site as it was.
    """

    def __init__(self, output_dir: Path) -> None:
        self.output_dir = output_dir.absolute()
        self.written = 0
        self.unchanged = 0
        self._paths: set[str] = set()
        self._dirs: set[Path] = set()
        self._staging: Path | None = None
        self._previous: Path | None = None
        self._lock: contextlib.ExitStack = contextlib.ExitStack()

    def __enter__(self) -> SiteWriter:
        parent = self.output_dir.parent
        parent.mkdir(parents=True, exist_ok=True)
        self._lock.enter_context(_locked(parent))
        try:
            self._previous = self._check_previous()
            self._remove_leftovers(parent)
            self._staging = Path(
                tempfile.mkdtemp(prefix=f".{self.output_dir.name}.staging-", dir=parent)
            )
            self._staging.chmod(0o755)
        except BaseException:
            self._lock.close()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        try:
            if self._staging is not None:
                shutil.rmtree(self._staging, ignore_errors=True)
                self._staging = None
        finally:
            self._lock.close()

    def _check_previous(self) -> Path | None:
        path = self.output_dir
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            raise SiteError(f"{path} exists and is not a directory: choose another output_dir")
        if not path.exists():
            return None
        if not _is_site(path):
            raise SiteError(
                f"{path} exists and was not written by x402 monitor (no {MARKER} file): "
                "it is never replaced; empty it or choose another output_dir"
            )
        return path

    def _remove_leftovers(self, parent: Path) -> None:
        """Delete staging/old directories a crashed render left (we hold the lock)."""
        for prefix in (f".{self.output_dir.name}.staging-", f".{self.output_dir.name}.old-"):
            for leftover in parent.glob(prefix + "*"):
                if leftover.is_dir() and not leftover.is_symlink():
                    shutil.rmtree(leftover, ignore_errors=True)

    def put(self, relative: str, content: bytes, *, keep: bool = False) -> None:
        """Add one file of the new site: hard-linked from the previous site when unchanged.

        `keep=True` links the previous file without comparing (see `keep()`).
        """
        staging = self._staging
        if staging is None:
            raise RuntimeError("SiteWriter.put outside its `with` block")
        parts = PurePosixPath(relative).parts
        if not parts or relative.startswith("/") or any(p in {"", ".", ".."} for p in parts):
            raise SiteError(f"refusing to write {relative!r}: not a plain relative path")
        if relative in self._paths:
            raise SiteError(f"{relative} written twice in one render")
        self._paths.add(relative)
        target = staging.joinpath(*parts)
        if target.parent not in self._dirs:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._dirs.add(target.parent)
        if self._previous is not None and (
            keep or self._same(self._previous.joinpath(*parts), content)
        ):
            try:
                os.link(self._previous.joinpath(*parts), target)
            except OSError:
                shutil.copy2(self._previous.joinpath(*parts), target)
            self.unchanged += 1
            return
        with open(target, "wb") as file:
            file.write(content)
        self.written += 1

    def previous_bytes(self, relative: str) -> bytes | None:
        """Return a file of the previous site (None when there is none)."""
        if self._previous is None:
            return None
        try:
            return self._previous.joinpath(*PurePosixPath(relative).parts).read_bytes()
        except OSError:
            return None

    def keep(self, *relatives: str) -> bool:
        """Carry files over from the previous site unread; False (nothing kept) if one is missing.

        For files the caller knows are unchanged (same inputs): it saves rendering them.
        """
        previous = self._previous
        if previous is None or not all(previous.joinpath(r).is_file() for r in relatives):
            return False
        for relative in relatives:
            self.put(relative, b"", keep=True)
        return True

    @staticmethod
    def _same(old: Path, content: bytes) -> bool:
        try:
            if old.is_symlink() or old.stat().st_size != len(content):
                return False
            with open(old, "rb") as file:
                return file.read() == content
        except OSError:
            return False

    def commit(self) -> int:
        """Swap the new site in; return how many files of the previous site are gone."""
        staging = self._staging
        if staging is None:
            raise RuntimeError("SiteWriter.commit outside its `with` block")
        marker = staging / MARKER
        try:
            if self._previous is None or not self._same(self._previous / MARKER, MARKER_TEXT):
                raise FileNotFoundError(MARKER)
            os.link(self._previous / MARKER, marker)
        except OSError:
            marker.write_bytes(MARKER_TEXT)
        removed = 0
        previous = self._previous
        if previous is not None:
            for folder, _, names in os.walk(previous):
                base = Path(folder).relative_to(previous).as_posix()
                for name in names:
                    relative = name if base == "." else f"{base}/{name}"
                    removed += relative != MARKER and relative not in self._paths
        if previous is None:
            staging.rename(self.output_dir)
            self._staging = None
            return removed
        if _exchange(staging, self.output_dir):
            return removed  # `staging` now holds the previous site; __exit__ deletes it
        old = Path(tempfile.mkdtemp(prefix=f".{self.output_dir.name}.old-", dir=staging.parent))
        os.rename(self.output_dir, old / "site")
        try:
            os.rename(staging, self.output_dir)
        except BaseException:
            os.rename(old / "site", self.output_dir)
            raise
        self._staging = old
        return removed
