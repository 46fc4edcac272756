"""Callgrind's measured window from Python, for the benches that count instructions in
process (indexing_instructions.py, api_instructions.py): a small C library built here with
gcc opens and closes the window through callgrind's client requests (outside valgrind they
do nothing, and the counts read 0). It imports nothing of localiot, so importing it does not
change which localiot tree a bench runs (PYTHONPATH decides)."""

from __future__ import annotations

import ctypes
import glob
import os
import subprocess
import tempfile

_SOURCE = r"""
#include <valgrind/callgrind.h>
void window_open(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; }
void window_close(void) { CALLGRIND_STOP_INSTRUMENTATION; }
void window_dump(const char *label) { CALLGRIND_DUMP_STATS_AT(label); }
"""


def window():
    """The library: window_open(), window_close(), window_dump(label)."""
    folder = tempfile.mkdtemp(prefix="cg-window-")
    source, library = os.path.join(folder, "window.c"), os.path.join(folder, "window.so")
    with open(source, "w") as f:
        f.write(_SOURCE)
    subprocess.run(["gcc", "-O1", "-shared", "-fPIC", "-o", library, source], check=True)
    return ctypes.CDLL(library)


def last_total(out_pattern: str) -> int:
    """The total of this process's newest callgrind dump (0 when not run under callgrind)."""
    dumps = glob.glob(out_pattern.replace("%p", str(os.getpid())) + ".*")
    if not dumps:
        return 0
    with open(max(dumps, key=lambda path: int(path.rsplit(".", 1)[1]))) as f:
        totals = [line for line in f if line.startswith("totals:")]
    return int(totals[-1].split()[1]) if totals else 0
