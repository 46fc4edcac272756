#!/usr/bin/env python
"""Point reads, a ListThings page and inserts on the objects table laid out several ways,
from one loaded data directory (`api_instructions_server.py load ... --things 100000`).

    .venv/bin/python bench/store_layouts.py --db /tmp/d100k/localiot.db --work /tmp/layouts [--rounds 7]

Each layout is a file of its own built from the loaded file's rows (in key order, so packed),
opened with the store's settings (exclusive lock, WAL, mmap 256 MB); `as loaded` is a copy of
the file itself (pages as the server's growth left them). Rounds interleave the layouts; the
table gives min / median µs over the rounds of: a point read of a thing at random (execute +
fetchone of its doc, 20,000 per round), the first page of 100 summaries (one row, as
`Tx.summary_page` reads it), and an insert of a new thing with its summary (batches of 32 in
one transaction, as a commit group takes them, WAL synchronous=NORMAL).

CPU time on a loaded machine moves more than the layouts differ; callgrind's cache simulation
does not (`--window FILE`: 20,000 random point reads of that layout file to warm it, then
10,000 inside callgrind's window, for `valgrind --tool=callgrind --cache-sim=yes --LL=SIZE,16,64
--instr-atstart=no`; divide its totals by 10,000).
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

SCOPE = ("123456789012", "us-east-1")

LAYOUTS = {
    # name: (statements building it from `src` (the loaded file, attached), point read, page, insert)
    "as loaded": None,
    "without rowid (now)": (
        ["""CREATE TABLE objects (account TEXT NOT NULL, region TEXT NOT NULL, kind TEXT NOT NULL,
             name TEXT NOT NULL, doc TEXT NOT NULL, summary TEXT,
             PRIMARY KEY (account, region, kind, name)) WITHOUT ROWID""",
         "INSERT INTO objects SELECT account, region, kind, name, doc, summary FROM src.objects ORDER BY 1, 2, 3, 4"],
        "SELECT doc FROM objects WHERE account=? AND region=? AND kind=? AND name=?",
        "SELECT count(*), group_concat(name, '\n'), group_concat(coalesce(summary, '\x1f'), '\x1e') FROM "
        "(SELECT name, summary FROM objects WHERE account=? AND region=? AND kind=? ORDER BY name LIMIT 101)",
        ["INSERT INTO objects (account, region, kind, name, doc, summary) VALUES (?,?,?,?,?,?)"],
    ),
    "rowid + key index": (
        ["""CREATE TABLE objects (account TEXT NOT NULL, region TEXT NOT NULL, kind TEXT NOT NULL,
             name TEXT NOT NULL, doc TEXT NOT NULL, summary TEXT)""",
         "CREATE UNIQUE INDEX objects_key ON objects (account, region, kind, name)",
         "INSERT INTO objects SELECT account, region, kind, name, doc, summary FROM src.objects ORDER BY 1, 2, 3, 4"],
        "SELECT doc FROM objects WHERE account=? AND region=? AND kind=? AND name=?",
        "SELECT count(*), group_concat(name, '\n'), group_concat(coalesce(summary, '\x1f'), '\x1e') FROM "
        "(SELECT name, summary FROM objects WHERE account=? AND region=? AND kind=? ORDER BY name LIMIT 101)",
        ["INSERT INTO objects (account, region, kind, name, doc, summary) VALUES (?,?,?,?,?,?)"],
    ),
    "summaries apart": (
        ["""CREATE TABLE objects (account TEXT NOT NULL, region TEXT NOT NULL, kind TEXT NOT NULL,
             name TEXT NOT NULL, doc TEXT NOT NULL,
             PRIMARY KEY (account, region, kind, name)) WITHOUT ROWID""",
         """CREATE TABLE summaries (account TEXT NOT NULL, region TEXT NOT NULL, kind TEXT NOT NULL,
             name TEXT NOT NULL, summary TEXT NOT NULL,
             PRIMARY KEY (account, region, kind, name)) WITHOUT ROWID""",
         "INSERT INTO objects SELECT account, region, kind, name, doc FROM src.objects ORDER BY 1, 2, 3, 4",
         "INSERT INTO summaries SELECT account, region, kind, name, summary FROM src.objects "
         "WHERE summary IS NOT NULL ORDER BY 1, 2, 3, 4"],
        "SELECT doc FROM objects WHERE account=? AND region=? AND kind=? AND name=?",
        "SELECT count(*), group_concat(name, '\n'), group_concat(summary, '\x1e') FROM "
        "(SELECT name, summary FROM summaries WHERE account=? AND region=? AND kind=? ORDER BY name LIMIT 101)",
        ["INSERT INTO objects (account, region, kind, name, doc) VALUES (?,?,?,?,?)",
         "INSERT INTO summaries (account, region, kind, name, summary) VALUES (?,?,?,?,?)"],
    ),
}
LAYOUTS["as loaded"] = LAYOUTS["without rowid (now)"]


def connect(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, cached_statements=64)
    db.execute("PRAGMA locking_mode=EXCLUSIVE")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA mmap_size={256 * 1024 * 1024}")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


def build(src: str, work: str) -> dict[str, str]:
    os.makedirs(work, exist_ok=True)
    paths = {}
    for name, (statements, *_) in LAYOUTS.items():
        path = os.path.join(work, name.replace(" ", "_").replace("(", "").replace(")", "") + ".db")
        paths[name] = path
        if os.path.exists(path):
            continue
        if name == "as loaded":
            shutil.copyfile(src, path)
            continue
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("ATTACH ? AS src", (src,))
        db.execute("BEGIN")
        for sql in statements:
            db.execute(sql)
        db.execute("COMMIT")
        db.close()
    return paths


def window(path: str) -> None:
    """Point reads of the layout file `path` in callgrind's measured window (see the docstring)."""
    import callgrind_window

    lib, db = callgrind_window.window(), connect(path)
    names = [r[0] for r in db.execute("SELECT name FROM objects WHERE kind='thing'")]
    rng, cur = random.Random(7), db.cursor()
    get = "SELECT doc FROM objects WHERE account=? AND region=? AND kind=? AND name=?"
    for _ in range(20000):
        cur.execute(get, (*SCOPE, "thing", rng.choice(names))).fetchone()
    keys = [(*SCOPE, "thing", rng.choice(names)) for _ in range(10000)]
    lib.window_open()
    for key in keys:
        cur.execute(get, key).fetchone()
    lib.window_close()
    lib.window_dump(b"reads")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--db")
    p.add_argument("--work")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--reads", type=int, default=20000)
    p.add_argument("--window", help="a layout file: its point reads in callgrind's window, nothing else")
    a = p.parse_args()
    if a.window:
        window(a.window)
        return
    paths = build(a.db, a.work)
    src = sqlite3.connect(a.db)
    names = [r[0] for r in src.execute("SELECT name FROM objects WHERE kind='thing'")]
    sample = src.execute("SELECT doc, summary FROM objects WHERE kind='thing' LIMIT 1").fetchone()
    src.close()
    dbs = {name: connect(path) for name, path in paths.items()}
    sizes = {name: os.path.getsize(path) // 2**20 for name, path in paths.items()}
    results = {name: {"read": [], "page": [], "insert": []} for name in dbs}
    rng = random.Random(7)
    serial = 0
    for r in range(a.rounds):
        keys = [(*SCOPE, "thing", rng.choice(names)) for _ in range(a.reads)]
        order = list(dbs) if r % 2 == 0 else list(reversed(dbs))
        for name in order:
            db = dbs[name]
            _, get, page, inserts = LAYOUTS[name]
            cur = db.cursor()
            execute = cur.execute
            t = time.perf_counter()
            for key in keys:
                execute(get, key).fetchone()
            results[name]["read"].append((time.perf_counter() - t) / len(keys) * 1e6)
            t = time.perf_counter()
            for _ in range(200):
                execute(page, (*SCOPE, "thing")).fetchone()
            results[name]["page"].append((time.perf_counter() - t) / 200 * 1e6)
            batch = []
            for _ in range(320):
                serial += 1
                batch.append(f"layout-{rng.getrandbits(48):012x}-{serial}")
            t = time.perf_counter()
            for i in range(0, len(batch), 32):
                execute("BEGIN IMMEDIATE")
                for thing in batch[i:i + 32]:
                    for sql in inserts:
                        args = (*SCOPE, "thing", thing) + ((sample[0], sample[1]) if sql.count("?") == 6
                                                          else (sample[0],) if "doc" in sql else (sample[1],))
                        execute(sql, args)
                execute("COMMIT")
            results[name]["insert"].append((time.perf_counter() - t) / len(batch) * 1e6)
    print(f"{len(names):,} things, {a.rounds} rounds, min / median µs")
    print("| layout | file MB | point read | page of 100 | insert |")
    print("|---|---|---|---|---|")
    for name, got in results.items():
        cells = " | ".join(f"{min(v):.2f} / {statistics.median(v):.2f}" for v in got.values())
        print(f"| {name} | {sizes[name]} | {cells} |")


if __name__ == "__main__":
    main()
