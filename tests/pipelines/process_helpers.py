"""The processes of this machine as /proc shows them: which are alive, in a process group or
children of a process, and their command lines (what the server and UI tests check is gone)."""

from __future__ import annotations

import os
from pathlib import Path


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def process(pid: int) -> tuple[int, str] | None:
    """(pid, start time): a process, told apart from a later one that reuses its id."""
    fields = _stat(pid)
    return (pid, fields[19]) if fields is not None and fields[0] != "Z" else None


def alive(noted: tuple[int, str]) -> bool:
    """Still running (a zombie, killed but not yet reaped by its parent, runs nothing)."""
    return process(noted[0]) == noted


def _processes(field: int, value: int) -> set[tuple[int, str]]:
    found = set()
    for entry in os.listdir("/proc"):
        fields = _stat(int(entry)) if entry.isdigit() else None
        if fields is not None and fields[field] == str(value) and (noted := process(int(entry))):
            found.add(noted)
    return found


def group(pgid: int) -> set[tuple[int, str]]:
    """The live processes of a process group."""
    return _processes(2, pgid)


def children(pid: int) -> set[tuple[int, str]]:
    return _processes(1, pid)


def cmdline(pid: int) -> str:
    """The command line of ``pid`` (empty if it has gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
