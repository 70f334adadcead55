"""Measure the checker's detection rates (a tool, not a test; the tests assert them on fewer trials).

    python -m tests.property.measure_detection --trials 200
    python -m tests.property.measure_detection --trials 100 --match conv,pool,flatten,dropout,batch

Prints, for every deliberately wrong Diffable of ``wrong_diffables.BUGS``, the fraction
of random cases reported as failing; for every registered (correct) Diffable, the
fraction wrongly reported (false alarms, float64 and float32); and for the large-layer
scenarios (one entry of a 784x256 weight gradient off by 0.1 %, a sign flip in one of
8,192 entries) the fraction caught by each view, with Rademacher and Gaussian projections.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from beras.testing import check_gradients, domains, sample_case

from .wrong_diffables import BUGS, ScaledEntryDense, SignFlipDense, SignFlipLocalDense


def _cases(domain, trials, dtype=np.float64):
    for seed in range(trials):
        case = sample_case(domain, 10_000 + seed, dtype=dtype)
        if domain.kinks:
            case.inputs[0].flat[seed % case.inputs[0].size] = domain.kinks[0]
        yield case


def _matches(text: str, match: str) -> bool:
    """Whether ``text`` contains one of the comma-separated terms of ``match`` (or no term)."""
    terms = [t.strip().lower() for t in match.split(",") if t.strip()]
    return not terms or any(t in text.lower() for t in terms)


def wrong_diffables(trials: int, match: str = "") -> None:
    print(f"Deliberately wrong Diffables ({trials} random cases each): detection rate")
    for name, domain in sorted(BUGS.items()):
        if not _matches(f"{name} {domain.cls.__name__}", match):
            continue
        caught = sum(
            c.check(raise_on_failure=False).status == "fail" for c in _cases(domain, trials)
        )
        print(f"  {name:45s} {caught}/{trials}")


def correct_diffables(trials: int, match: str = "") -> None:
    print(f"Correct Diffables ({trials} random cases per dtype): false alarms / inconclusive")
    for domain in domains():
        if not _matches(domain.name, match):
            continue
        for dtype in (np.float64, np.float32):
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                statuses = [
                    c.check(raise_on_failure=False, inconclusive="ignore").status
                    for c in _cases(domain, trials, dtype)
                ]
            print(
                f"  {domain.name:40s} {np.dtype(dtype).name:8s} fail {statuses.count('fail')}/{trials}"
                f"  inconclusive {statuses.count('inconclusive')}/{trials}"
            )


def large_layers(trials: int) -> None:
    rng = np.random.default_rng(0)
    scenarios = [
        ("784x256, one VJP entry x1.001", ScaledEntryDense, (784, 256), 1.001, "rademacher"),
        (
            "784x256, one local entry x1.001 (Rademacher u)",
            SignFlipLocalDense,
            (784, 256),
            1.001,
            "rademacher",
        ),
        (
            "784x256, one local entry x1.001 (Gaussian u)",
            SignFlipLocalDense,
            (784, 256),
            1.001,
            "gaussian",
        ),
        ("128x64, one VJP entry sign-flipped", SignFlipDense, (128, 64), -1.0, "rademacher"),
        ("128x64, one local entry sign-flipped", SignFlipLocalDense, (128, 64), -1.0, "rademacher"),
    ]
    print(f"Large layers ({trials} trials, random entry, input and seed each): caught per view")
    for name, cls, (n_in, n_out), factor, projection in scenarios:
        counts = {"any": 0, "local": 0, "vjp": 0, "tape": 0}
        start = time.perf_counter()
        for trial in range(trials):
            layer = cls(n_in, n_out, seed=trial)
            layer.entry, layer.factor = (int(rng.integers(n_in)), int(rng.integers(n_out))), factor
            x = rng.normal(size=(4, n_in)).astype(np.float32)
            result = check_gradients(
                layer, x, raise_on_failure=False, seed=trial, projection=projection
            )
            views = result.failed_views()
            counts["any"] += bool(views)
            for v in ("local", "vjp", "tape"):
                counts[v] += v in views
        per = (time.perf_counter() - start) / trials
        print(
            f"  {name:48s} any {counts['any']}/{trials}  local {counts['local']}  vjp {counts['vjp']}"
            f"  tape {counts['tape']}  ({per:.2f} s per check)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--large-trials", type=int, default=None)
    parser.add_argument(
        "--match",
        default="",
        help="only the wrong and correct Diffables whose name contains one of these "
        "comma-separated terms (case-insensitive); skips the large-layer scenarios",
    )
    args = parser.parse_args()
    wrong_diffables(args.trials, args.match)
    correct_diffables(args.trials, args.match)
    if not args.match:
        large_layers(args.large_trials or args.trials)


if __name__ == "__main__":
    main()
