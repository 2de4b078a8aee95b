"""The suite's once-per-session work (tests/shared_once.py): two processes asking at once get
one ``make``, the second waiting for the first; a ``make`` that failed is tried again."""

from __future__ import annotations

import multiprocessing
import time

import pytest

from tests.shared_once import once, session_folder


class Base:
    """What ``once`` reads of pytest's ``tmp_path_factory``: a base folder."""

    def __init__(self, folder):
        self.folder = folder

    def getbasetemp(self):
        return self.folder


def slow_make(folder):
    with open(folder.parent / "makes.log", "a") as log:
        log.write(f"{folder.name}\n")
    time.sleep(0.5)  # the other process asks meanwhile
    (folder / "made").write_text("yes")


def ask(base):
    folder = once(Base(base), "thing", slow_make)
    return (folder / "made").read_text()


def test_two_processes_get_one_make_and_the_same_folder(tmp_path):
    base = tmp_path / "popen-gw0"
    base.mkdir()
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        assert pool.map(ask, [base, base]) == ["yes", "yes"]
    assert (session_folder(Base(base)) / "makes.log").read_text() == "shared-thing\n"  # made once


def test_a_failed_make_is_tried_again(tmp_path):
    def failing(folder):
        (folder / "half").write_text("x")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        once(Base(tmp_path), "thing", failing)
    folder = once(Base(tmp_path), "thing", slow_make)
    assert (folder / "made").read_text() == "yes" and not (folder / "half").exists()
