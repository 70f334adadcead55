"""Turn pytest-benchmark JSON into the ratio tables of BENCHMARKS.md.

    python -m pytest benchmarks --benchmark-only --benchmark-json=run1.json
    python benchmarks/report.py run1.json [run2.json ...]            # print Markdown
    python benchmarks/report.py run1.json run2.json --update BENCHMARKS.md

Each JSON file is one run; with several, every ratio gets one column per run. Ratios
are computed within a run (numerator and denominator measured minutes apart on the
same machine), from the minimum over rounds (the least disturbed by other jobs) and,
in brackets, from the medians. ``--update`` rewrites the part of the file between
``<!-- report:begin -->`` and ``<!-- report:end -->`` (with ``--section conv``, between
``<!-- report:begin conv -->`` and ``<!-- report:end conv -->``), so the tables are
regenerated, never edited by hand. Needs the standard library only.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

BEGIN, END = "<!-- report:begin -->", "<!-- report:end -->"

# (group, numerator role, denominator role, what the ratio means, target per case or None)
RATIOS: list[tuple[str, str, str, str]] = [
    ("batch_step", "beras", "reference", "Beras / ordinary NumPy"),
    ("batch_step", "beras", "reference_tuned", "Beras / tuned NumPy"),
    ("batch_step", "beras_logits", "reference", "Beras (from_logits) / ordinary NumPy"),
    ("fit_epoch", "beras", "reference", "Beras fit / ordinary NumPy loop"),
    ("fit_epoch", "beras", "reference_tuned", "Beras fit / tuned NumPy loop"),
    ("dense_compose", "per_sample", "vectorised", "per-sample loop / Beras (speed-up)"),
    ("dense_compose", "generic", "vectorised", "generic batched / Beras (speed-up)"),
    ("softmax_vjp", "materialised", "vjp", "(B, n, n) Jacobian / VJP (speed-up)"),
    ("conv2d", "beras", "torch", "Beras Conv2D / PyTorch conv2d, same thread count"),
    ("cnn_layer_cost", "maxpool", "conv", "MaxPool2D / the Conv2D before it"),
    ("cnn_layer_cost", "avgpool", "conv", "AveragePooling2D / the Conv2D before it"),
    ("cnn_layer_cost", "batchnorm", "conv", "BatchNormalization (after the pooling) / the Conv2D"),
    (
        "cnn_layer_cost",
        "batchnorm_unpooled",
        "conv",
        "BatchNormalization on the Conv2D's output / it",
    ),
]

# targets: (group, numerator, denominator, case) -> ("<=", "<" or ">=", value)
TARGETS: dict[tuple[str, str, str, str], tuple[str, float]] = {
    ("batch_step", "beras", "reference", "float32 B=128"): ("<=", 1.10),
    ("batch_step", "beras", "reference", "float32 B=32"): ("<=", 1.25),
    ("dense_compose", "per_sample", "vectorised", "Dense(784->256) float32 B=128"): (">=", 30.0),
    **{
        ("conv2d", "beras", "torch", f"{shape} B=128 {threads}"): ("<=", 1.5)
        for shape in ("28x28x1->32", "26x26x32->64")
        for threads in ("1 thread", "2 threads")
    },
    **{
        ("cnn_layer_cost", role, "conv", f"CNN block {conv} same, B=128 float32"): ("<", 1.0)
        for role in ("maxpool", "avgpool", "batchnorm")
        for conv in ("28x28x1->32", "14x14x32->64")
    },
}


def load(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    runs: dict[tuple[str, str, str], dict[str, Any]] = {}
    for bench in data.get("benchmarks", []):
        info = bench.get("extra_info", {})
        if "group" in info and "role" in info:
            runs[(info["group"], info["case"], info["role"])] = bench
    return {"path": path, "data": data, "bench": runs}


def _case_key(case: str) -> tuple[Any, ...]:
    """Sort cases naturally: float32 before float64, B=32 before B=128."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", case))


def _fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _verdict(target: tuple[str, float], value: float) -> str:
    op, bound = target
    ok = {"<=": value <= bound, "<": value < bound, ">=": value >= bound}[op]
    return "met" if ok else "**missed**"


def _run_name(i: int, run: dict[str, Any]) -> str:
    threads = run["data"].get("machine_info", {}).get("openblas_runtime", {}).get("threads")
    timers = {b.get("options", {}).get("timer") for b in run["data"].get("benchmarks", [])}
    notes = [f"{threads} BLAS thread{'s' if threads != 1 else ''}"] if threads else []
    if "process_time" in timers:  # --benchmark-timer=time.process_time
        notes.append("CPU time")
    return f"run {i + 1}" + (f" ({', '.join(notes)})" if notes else "")


def ratio_tables(runs: list[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    run_names = [_run_name(i, r) for i, r in enumerate(runs)]
    for group, num, den, meaning in RATIOS:
        cases = sorted(
            {c for r in runs for (g, c, role) in r["bench"] if g == group and role == num},
            key=_case_key,
        )
        rows = []
        for case in cases:
            cells, verdicts = [], []
            target = TARGETS.get((group, num, den, case))
            for r in runs:
                a, b = r["bench"].get((group, case, num)), r["bench"].get((group, case, den))
                if a is None or b is None:
                    cells.append("–")
                    continue
                by_min = a["stats"]["min"] / b["stats"]["min"]
                by_median = a["stats"]["median"] / b["stats"]["median"]
                cells.append(f"**{by_min:.2f}×** ({by_median:.2f}×)")
                if target is not None:
                    verdicts.append(_verdict(target, by_min))
            goal = f"{target[0]} {target[1]:g}: {', '.join(verdicts)}" if target else ""
            rows.append(f"| {case} | " + " | ".join(cells) + f" | {goal} |")
        if rows:
            lines += [
                f"**{meaning}** (`{group}`: {num} / {den}; min over rounds, median in brackets)",
                "",
                "| case | " + " | ".join(run_names) + " | target |",
                "|---|" + "---|" * len(runs) + "---|",
                *rows,
                "",
            ]
    return lines


def gradient_check_table(runs: list[dict[str, Any]]) -> list[str]:
    cases = sorted(
        {c for r in runs for (g, c, _) in r["bench"] if g == "gradient_check"}, key=_case_key
    )
    if not cases:
        return []
    lines = [
        "**`beras.testing.check_gradients` per checked parameter** (all three views, full mode; "
        "time per parameter from the median, function evaluations per parameter)",
        "",
        "| case | parameters | " + " | ".join(_run_name(i, r) for i, r in enumerate(runs)) + " |",
        "|---|---|" + "---|" * len(runs),
    ]
    for case in cases:
        params, cells = None, []
        for r in runs:
            b = r["bench"].get(("gradient_check", case, "check_gradients"))
            if b is None:
                cells.append("–")
                continue
            params = b["extra_info"]["params"]
            per = b["stats"]["median"] / params
            evals = b["extra_info"].get("evaluations")
            cells.append(
                f"{_fmt_time(per)}/param, {evals / params:.1f} evals/param"
                if evals
                else _fmt_time(per)
            )
        lines.append(f"| {case} | {params} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def absolute_table(runs: list[dict[str, Any]]) -> list[str]:
    keys = sorted(
        {k for r in runs for k in r["bench"]}, key=lambda k: (k[0], _case_key(k[1]), k[2])
    )
    lines = [
        "| group | case | role | "
        + " | ".join(f"{_run_name(i, r)}: min / median (rounds)" for i, r in enumerate(runs))
        + " |",
        "|---|---|---|" + "---|" * len(runs),
    ]
    for key in keys:
        cells = []
        for r in runs:
            b = r["bench"].get(key)
            s = b["stats"] if b else None
            cells.append(
                f"{_fmt_time(s['min'])} / {_fmt_time(s['median'])} ({s['rounds']})" if s else "–"
            )
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def machine_section(runs: list[dict[str, Any]]) -> list[str]:
    lines = []
    for i, r in enumerate(runs):
        m = r["data"].get("machine_info", {})
        blas_rt = m.get("openblas_runtime", {})
        given = ", ".join(f"{k}={v}" for k, v in sorted(m.get("env_given", {}).items())) or "none"
        env = ", ".join(f"{k}={v}" for k, v in sorted(m.get("env", {}).items())) or "none"
        load, when = r["data"].get("loadavg_at_end"), "end"
        if load is None:
            load, when = m.get("loadavg_at_start"), "start"
        lines.append(
            f"- run {i + 1} ({r['data'].get('datetime', '?')[:19]}): {m.get('cpu_model', '?')}, "
            f"{m.get('cores', '?')} cores; Python {m.get('python_version', '?')}; NumPy {m.get('numpy', '?')}; "
            f"BLAS {m.get('blas', '?')}, at run time {blas_rt.get('threads', '?')} thread(s), "
            f"kernels {blas_rt.get('core', '?')}; malloc: {m.get('malloc', '?')}; "
            f"BLAS/OpenMP variables given: {given}, in effect: {env}; load average (1/5/15 min) at the {when}: "
            f"{', '.join(f'{x:.2f}' for x in load) if load else '?'}"
        )
    return [*lines, ""]


def render(runs: list[dict[str, Any]]) -> str:
    lines = ["### Machine", "", *machine_section(runs), "### Ratios", "", *ratio_tables(runs)]
    lines += gradient_check_table(runs)
    lines += ["### Absolute times", "", *absolute_table(runs)]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "json", nargs="+", help="pytest-benchmark --benchmark-json files, one per run"
    )
    parser.add_argument("--update", metavar="FILE", help=f"rewrite FILE between {BEGIN} and {END}")
    parser.add_argument(
        "--section",
        metavar="NAME",
        help="with --update: rewrite the section marked <!-- report:begin NAME --> ... "
        "<!-- report:end NAME --> instead (e.g. conv)",
    )
    args = parser.parse_args(argv)
    runs = [load(p) for p in args.json]
    text = render(runs)
    if args.update:
        begin, end = (
            (f"<!-- report:begin {args.section} -->", f"<!-- report:end {args.section} -->")
            if args.section
            else (BEGIN, END)
        )
        path = Path(args.update)
        doc = path.read_text(encoding="utf-8")
        if begin not in doc or end not in doc:
            print(f"report.py: {path} has no {begin} ... {end} section to update", file=sys.stderr)
            return 2
        head, rest = doc.split(begin, 1)
        _, tail = rest.split(end, 1)
        path.write_text(f"{head}{begin}\n{text}{end}{tail}", encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
