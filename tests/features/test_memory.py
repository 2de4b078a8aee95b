"""malloc's transparent huge pages: when the foedus command asks for them, and that it does."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from foedus.features.memory import huge_pages_tunables

MADVISE = "always [madvise] never"


@pytest.mark.parametrize(("tunables", "libc", "thp", "expected"), [
    ("", ("glibc", "2.36"), MADVISE, "glibc.malloc.hugetlb=1"),
    ("", ("glibc", "2.36"), "[always] madvise never", "glibc.malloc.hugetlb=1"),
    ("glibc.malloc.arena_max=2", ("glibc", "2.40"), MADVISE, "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"),
    ("glibc.malloc.hugetlb=0", ("glibc", "2.36"), MADVISE, None),  # the user's opt-out stands
    ("", ("glibc", "2.34"), MADVISE, None),  # before the tunable existed
    ("", ("glibc", "2.36"), "always madvise [never]", None),
    ("", ("glibc", "2.36"), None, None),  # no such kernel setting
    ("", ("", ""), MADVISE, None),  # musl and the like
])
def test_huge_pages_are_asked_only_where_glibc_and_the_kernel_give_them(tunables, libc, thp, expected):
    assert huge_pages_tunables(tunables, libc, thp) == expected


def test_the_command_runs_again_with_huge_pages_keeping_its_pid_and_arguments():
    code = ("import os, sys; from foedus.features.memory import with_huge_pages; with_huge_pages(); "
            "print(os.getpid(), os.environ.get('GLIBC_TUNABLES'), sys.argv[1:])")
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    process = subprocess.Popen([sys.executable, "-c", code, "a", "b c"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    with open("/sys/kernel/mm/transparent_hugepage/enabled") as handle:  # this project's machines: Linux, glibc
        applies = "[never]" not in handle.read()
    tunables = "glibc.malloc.hugetlb=1" if applies else "None"
    # run again once (the same process), with the setting and the same arguments
    assert stdout.split(" ", 2) == [str(process.pid), tunables, "['a', 'b c']\n"]
