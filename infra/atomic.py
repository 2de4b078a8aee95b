"""Atomic file writes: a reader of the target sees the old file or the new one, never half.

Every output of foedus (interim caches, built tables and their sidecars, raw copies, the files
a user names with ``--output``) is written to a temporary file beside its target and renamed
onto it. A process killed mid-write leaves only that temporary file, named
``.<target>.<pid>.<random>.part``; ``remove_unfinished`` deletes those whose writer is no
longer running (never a live writer's). A folder that is read-only or full is a
``OutputError`` naming the file, the folder and what to do, and leaves nothing behind.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from foedus.infra.errors import FoedusError

log = logging.getLogger(__name__)


class OutputError(FoedusError):
    """An output cannot be written: its folder is read-only, not writable or full."""


# What a user can do about each errno of a failed write; any other OSError is not the output
# folder's fault (or not one a user can fix) and passes unchanged.
_ELSEWHERE = "choose another folder (FOEDUS_DATA_DIR for foedus's data, --output for a file you name)"
_FULL = "free space there, or " + _ELSEWHERE
_READ_ONLY = "make it writable, or " + _ELSEWHERE
_ADVICE = {errno.ENOSPC: _FULL, errno.EDQUOT: _FULL, errno.EFBIG: _FULL,
           errno.EROFS: _READ_ONLY, errno.EACCES: _READ_ONLY, errno.EPERM: _READ_ONLY}
# The errnos only a write to a disk gives (never a network connection's, as EACCES may be)
DISK_FULL_OR_READ_ONLY = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    """The SHA-256 of a file's bytes, read a megabyte at a time."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def output_errors(target: Path, *ours: Path) -> Iterator[None]:
    """Turn an OSError of writing ``target`` (a full or read-only folder) into an ``OutputError``.

    ``ours``: other paths the write touches (its temporary file); an OSError naming any other
    file (the source of a copy, say) is not the output's and passes unchanged.
    """
    try:
        yield
    except OSError as exc:
        target = Path(target)
        mine = {target, *target.parents, *map(Path, ours)}
        named = {Path(f) for f in (exc.filename, exc.filename2) if f is not None}
        # a full or read-only disk is always the one written to; a permission error may be the
        # source's (of a copy), unless it names the output or nothing
        if exc.errno not in _ADVICE or (exc.errno not in DISK_FULL_OR_READ_ONLY and named and not named & mine):
            raise
        raise OutputError(f"cannot write {target.name} in {target.parent}: {os.strerror(exc.errno).lower()}; "
                          f"nothing was written: {_ADVICE[exc.errno]}") from exc


def make_folder(folder: Path) -> Path:
    """``mkdir -p folder``; whatever stops it (a read-only or full disk, a file in the way, a path
    that cannot hold folders) is an ``OutputError``."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        raise OutputError(f"cannot create the folder {folder}: {reason}; nothing was written: "
                          f"{_ADVICE.get(exc.errno, _ELSEWHERE)}") from exc
    return folder


# The writer's pid is in the name, so that a later process can tell a killed writer's leftover
# from a file another process is still writing.
_PART = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.part$")


@contextmanager
def _temporary_beside(target: Path) -> Iterator[Path]:
    """A new empty file beside ``target``, removed on the way out unless renamed away."""
    make_folder(target.parent)
    tmp = target.parent / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.part"
    try:
        with output_errors(target, tmp):
            # created as a plain open() would create it (0666 less the umask), and exclusively
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            yield tmp
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:  # a read-only folder refuses even this; a file left is a dead writer's for remove_unfinished
            pass


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success rename it onto ``target``.

    The temporary file lives in the same directory so that the final ``os.replace`` is a
    rename within one filesystem (atomic on POSIX). On any exception it is removed; a full or
    read-only folder raises ``OutputError``.
    """
    target = Path(target)
    with _temporary_beside(target) as tmp:
        yield tmp
        with output_errors(target, tmp):
            os.replace(tmp, target)


def write_atomic(target: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and move the result onto ``target`` atomically."""
    with atomic_path(target) as tmp:
        write(tmp)
    return Path(target)


# Hex digits of the content's SHA-256 kept in a checksummed file's name: 64 bits, as for the raw
# digest the interim caches are already named by; ample to tell a damaged file from its original.
NAME_DIGEST = 16


def write_checksummed(folder: Path, stem: str, suffix: str, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and rename the result to ``<stem>.<sha256[:16]><suffix>`` in ``folder``.

    The name carries the content's checksum, so the file and its checksum are written by one
    rename: no state has one without the other. ``checksummed_ok`` verifies it.
    """
    provisional = Path(folder) / f"{stem}{suffix}"
    with _temporary_beside(provisional) as tmp:
        write(tmp)
        target = provisional.with_name(f"{stem}.{sha256_of(tmp)[:NAME_DIGEST]}{suffix}")
        with output_errors(target, tmp):
            os.replace(tmp, target)
    return target


def checksummed_ok(path: Path, data: bytes) -> bool:
    """Do ``data`` (the bytes of ``path``) match the checksum in ``path``'s name?"""
    named = Path(path).name.split(".")
    return len(named) >= 3 and hashlib.sha256(data).hexdigest()[:NAME_DIGEST] == named[-2]


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    try:  # a zombie (killed, not yet reaped by its parent) writes nothing more
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def remove_unfinished(folder: Path, prefix: str = "") -> list[Path]:
    """Delete the temporary files in ``folder`` (of targets named ``prefix...``) left by writers
    that are no longer running, saying so; a running writer's are kept."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for part in sorted(folder.glob(f".{prefix}*.part")):
        found = _PART.match(part.name)
        if found is None or _running(int(found["pid"])):
            continue
        part.unlink(missing_ok=True)
        removed.append(part)
        log.warning("removed %s, an unfinished write of %s by process %s that no longer runs", part,
                    found["target"], found["pid"])
    return removed


@contextmanager
def exclusive(lock: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on the file ``lock`` (created if needed); if another process holds
    it, say once that this one waits for ``what``, and wait. The lock is released when this
    process exits, however it exits."""
    lock = Path(lock)
    make_folder(lock.parent)
    with output_errors(lock):
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            log.warning("waiting for another %s (process %s) to finish", what, holder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        with output_errors(lock):  # the holder's pid, for the message of the next one to wait
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)
