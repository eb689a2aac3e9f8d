#!/usr/bin/env python3
"""Print the criterion results of one benchmark group side by side, with ratios.

usage: python3 scripts/bench-ratios.py GROUP [BASELINE_ID]

Reads target/criterion/GROUP/*/*/new/estimates.json (the run just made) and prints each
case's mean and median, its ratio to every other case, and its overhead over the baseline
(default: the first case whose id starts with "bare").
"""
import json
import pathlib
import sys


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    group = sys.argv[1]
    root = pathlib.Path("target/criterion") / group
    cases = {}
    for est in sorted(root.glob("*/*/new/estimates.json")):
        case = f"{est.parts[-4]}/{est.parts[-3]}"
        data = json.loads(est.read_text())
        cases[case] = (data["mean"]["point_estimate"], data["median"]["point_estimate"])
    if not cases:
        print(f"no results under {root}; run `cargo bench --bench ...` first")
        return 1
    default = sys.argv[2] if len(sys.argv) > 2 else next((c for c in cases if c.startswith("bare")), None)

    def baseline(case):
        if case.startswith("bare"):
            return case
        # "X/impl" is measured against "bare_X/service" when the group has one.
        own = f"bare_{case.split('/')[0]}/service"
        return own if own in cases else default

    print(f"{'case':<28} {'mean ns':>10} {'median ns':>10} {'overhead ns':>12}  baseline")
    overhead = {}
    for case, (mean, median) in cases.items():
        base = baseline(case)
        over = ""
        if base:
            overhead[case] = median - cases[base][1]
            over = f"{overhead[case]:>12.1f}  {base}"
        print(f"{case:<28} {mean:>10.1f} {median:>10.1f} {over}")
    # Overhead ratios between implementations of the same case ("X/ours" vs "X/peer").
    by_case = {}
    for case in cases:
        name, impl = case.split("/", 1)
        if not name.startswith("bare"):
            by_case.setdefault(name, {})[impl] = case
    for name, impls in by_case.items():
        keys = sorted(impls)
        for i, a in enumerate(keys):
            for b in keys[i + 1:]:
                oa, ob = overhead.get(impls[a]), overhead.get(impls[b])
                if oa is not None and ob and ob > 0:
                    print(f"overhead {name}: {a} / {b} = {oa / ob:.3f}")
    names = list(cases)
    print()
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            print(f"{a} / {b} = {cases[a][1] / cases[b][1]:.3f} (medians)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
