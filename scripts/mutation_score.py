"""Print the mutation score of the last ``mutmut run`` (``tox -e mutation`` runs it).

Reads mutmut's per-module results under ``mutants/`` and prints, per module and in
total, how many mutants were generated, killed (a test failed, or the mutant hung until
its time limit), survived, and reached by no test, then the name of every survivor
(``mutmut show NAME`` prints its diff). Exits 1 if any mutant was left unchecked.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

DETECTED = {"killed", "timeout", "segfault", "caught by type check"}


def main(root: Path = Path("mutants")) -> int:
    metas = sorted(root.rglob("*.py.meta"))
    if not metas:
        print("no mutmut results under mutants/: run `mutmut run` first")
        return 1
    rows, survivors, total = [], [], Counter()
    for meta in metas:
        exit_codes = json.loads(meta.read_text())["exit_code_by_key"]
        if not exit_codes:
            continue
        counts = Counter(status_by_exit_code[code] for code in exit_codes.values())
        survivors += [k for k, c in exit_codes.items() if status_by_exit_code[c] == "survived"]
        module = str(meta.relative_to(root)).removesuffix(".meta")
        rows.append((module, counts))
        total.update(counts)
    print(f"{'module':32} {'mutants':>8} {'killed':>7} {'survived':>9} {'no tests':>9}")
    for module, c in [*rows, ("total", total)]:
        n = sum(c.values())
        killed = sum(c[s] for s in DETECTED)
        print(f"{module:32} {n:8d} {killed:7d} {c['survived']:9d} {c['no tests']:9d}")
    n = sum(total.values())
    killed = sum(total[s] for s in DETECTED)
    print(f"\nmutation score: {killed}/{n} killed = {100 * killed / n:.1f} %")
    others = {s: k for s, k in total.items() if s not in DETECTED | {"survived", "no tests"}}
    if others:
        print(f"other outcomes: {others}")
    for name in survivors:
        print(f"  survived: {name}")
    return 1 if total["not checked"] else 0


if __name__ == "__main__":
    sys.exit(main())
