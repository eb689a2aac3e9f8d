#!/usr/bin/env python3
"""Measure what docs/PERFORMANCE.md reports, and write its generated tables.

usage:
  python3 scripts/performance.py                   # everything below, then rewrite the doc
  python3 scripts/performance.py instructions      # callgrind, every case of benches/instructions.rs
  python3 scripts/performance.py criterion [BENCH ...]   # criterion medians, ours beside the peers
  python3 scripts/performance.py loopback          # wrk against real loopback servers
  python3 scripts/performance.py ratios GROUP      # one criterion group's results, as they are

Each part rewrites its own block of docs/PERFORMANCE.md (between `<!-- generated:PART -->`
and `<!-- end:PART -->`) and leaves the rest of the file alone; `ratios` only prints. Run it
from the repository root on an idle machine; everything takes about 30 minutes on 2 cores.

Overheads are a case's cost minus its baseline's (the same request to the same bare service),
and ratios are of overheads: absolute figures drift on shared machines, ratios much less.
Callgrind instruction counts repeat from run to run; wall times do not.
"""
import json
import pathlib
import re
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "PERFORMANCE.md"
REQUESTS = 2000

# (ours, theirs, what the ratio says): overhead ratios the instructions table ends with.
INSTRUCTION_RATIOS = [
    ("full_ours", "full_peers", "full stack vs the peer stack"),
    ("full_ours_same_work", "full_peers", "full stack vs the peer stack, the same headers written"),
    ("timer_stack", "timer_by_hand", "one entry from a stack vs by hand"),
    ("timer_chosen_by_hand", "timer_by_hand", "the timer or nothing, chosen at run time by hand, vs by hand"),
    ("timer_boxed_by_hand", "timer_by_hand", "the timer boxed, as a Router's layer, vs by hand"),
    ("cors_timer_stack", "cors_timer_by_hand", "two entries from a stack vs by hand"),
    ("five_silent_stack", "five_silent_by_hand", "five entries from a stack vs by hand"),
    ("cors_get_ours", "cors_get_peer", "cors simple GET vs tower-http"),
    ("cors_preflight_ours", "cors_preflight_peer", "cors preflight vs tower-http"),
    ("rate_limit_ours", "rate_limit_peer", "rate_limit (IETF headers) vs tower_governor (none)"),
    ("rate_limit_ours_no_headers", "rate_limit_peer", "rate_limit vs tower_governor, no headers"),
    ("rate_limit_ours", "rate_limit_peer_headers", "rate_limit vs tower_governor, both writing two headers"),
    ("stats_ours", "stats_peer", "stats vs axum-prometheus"),
    ("log_combined_ours", "log_tracing_peer", "request_log (writer thread) vs TraceLayer + fmt"),
    ("log_tracing_ours", "log_tracing_peer", "request_log (tracing sink) vs TraceLayer, same fmt"),
]

CRITERION_BENCHES = ["stack", "cors", "request_log", "rate_limit", "stats", "auth", "grpc"]
FEATURES = {"grpc": "tonic"}
# The criterion groups a bench writes, when not just the one named after it.
GROUPS = {"stack": ["stack", "full"]}


def run(cmd, **kw):
    print("+", " ".join(cmd), file=sys.stderr)
    return subprocess.run(cmd, cwd=ROOT, check=True, text=True, **kw)


def cargo_bench(name, *args, **kw):
    """`cargo bench --bench NAME` with the features that bench needs beyond the defaults."""
    features = ["--features", FEATURES[name]] if name in FEATURES else []
    return run(["cargo", "bench", "--bench", name, *features, *args], **kw)


def require(tool, why):
    if shutil.which(tool) is None:
        raise SystemExit(f"{tool} is needed for {why} (Debian: apt-get install {tool})")


def bench_binary(name):
    out = cargo_bench(name, "--no-run", "--message-format=json", stdout=subprocess.PIPE).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == name:
            if msg.get("executable"):
                return msg["executable"]
    raise SystemExit(f"no executable for bench {name}")


def callgrind(binary, case):
    out = f"/tmp/performance-callgrind.{case}"
    res = run(
        ["valgrind", "--tool=callgrind", "--toggle-collect=*measure*",
         f"--callgrind-out-file={out}", binary, case, str(REQUESTS)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    m = re.search(r"Collected : (\d+)", res.stderr)
    pathlib.Path(out).unlink(missing_ok=True)
    return int(m.group(1)) / REQUESTS


def instructions():
    require("valgrind", "the instruction counts")
    binary = bench_binary("instructions")
    listing = run([binary, "--list"], stdout=subprocess.PIPE).stdout
    cases = [line.split("\t") for line in listing.splitlines() if line]
    cost = {name: callgrind(binary, name) for name, _, _ in cases}
    over = {name: cost[name] - cost[base] for name, base, _ in cases if name != base}
    rows = ["| case | instructions per request | over its baseline |", "|---|---:|---:|"]
    for name, base, what in cases:
        extra = "" if name == base else f"{over[name]:+,.0f}"
        rows.append(f"| `{name}`: {what} | {cost[name]:,.0f} | {extra} |")
    rows += ["", "| ratio of overheads | ours | theirs | ratio | ratio of totals |",
             "|---|---:|---:|---:|---:|"]
    for a, b, what in INSTRUCTION_RATIOS:
        rows.append(
            f"| {what} (`{a}` / `{b}`) | {over[a]:+,.0f} | {over[b]:+,.0f} "
            f"| {over[a] / over[b]:.2f}x | {cost[a] / cost[b]:.3f}x |"
        )
    return "\n".join(rows)


def criterion_cases(group):
    root = ROOT / "target" / "criterion" / group
    cases = {}
    for est in sorted(root.glob("*/*/new/estimates.json")):
        data = json.loads(est.read_text())
        cases[f"{est.parts[-4]}/{est.parts[-3]}"] = data["median"]["point_estimate"]
    return cases


def baseline_of(case, cases):
    """"X/impl" is measured over "bare_X/service" when the group has one; axum-login (which
    needs a router) over "bare/router"; anything else over the group's first "bare" case."""
    if case.startswith("bare"):
        return None
    name, impl = case.split("/", 1)
    for base in (f"bare_{name}/service", "bare/router" if impl == "axum-login" else None):
        if base in cases:
            return base
    return next((c for c in cases if c.startswith("bare/service")), None) or next(
        (c for c in cases if c.startswith("bare")), None)


def criterion_table(group):
    cases = criterion_cases(group)
    if not cases:
        return f"no results for `{group}`: run `cargo bench --bench {group}` first"
    over = {}
    rows = ["| case | median | overhead | over |", "|---|---:|---:|---|"]
    for case, median in cases.items():
        base = baseline_of(case, cases)
        if base:
            over[case] = median - cases[base]
        extra = f"{over[case]:+,.0f} ns | `{base}`" if base else " | "
        rows.append(f"| `{case}` | {median:,.0f} ns | {extra} |")
    # Ours beside each other implementation of the same case ("X/ours" and "X/peer"), or
    # every "ours/X" beside every "peer/X" when the group is laid out that way.
    def ours(case):
        name, impl = case.split("/", 1)
        return name.startswith("ours") or impl.startswith("ours") or impl == "plugin_stack"

    def same_case(a, b):
        (an, _), (bn, _) = a.split("/", 1), b.split("/", 1)
        return an == bn or (an.startswith("ours") and bn.startswith("peer"))

    pairs = [
        f"| `{a}` / `{b}` | {over[a] / over[b]:.2f}x |"
        for a in over if ours(a)
        for b in over if not ours(b) and same_case(a, b) and over[b] > 0
    ]
    if pairs:
        rows += ["", "| overhead ratio | |", "|---|---:|"] + pairs
    return "\n".join(rows)


def criterion(names):
    parts = []
    for name in names:
        cargo_bench(name, stdout=subprocess.DEVNULL)
        for group in GROUPS.get(name, [name]):
            parts.append(f"**{group}** (`cargo bench --bench {name}`)\n\n{criterion_table(group)}")
    return "\n\n".join(parts)


def loopback():
    require("wrk", "the loopback benchmark")
    out = cargo_bench("loopback", stdout=subprocess.PIPE).stdout
    text = out[out.index("loopback:"):].strip()
    return f"```text\n{text}\n```"


def write(part, body):
    doc = DOC.read_text()
    begin, end = f"<!-- generated:{part} -->", f"<!-- end:{part} -->"
    if begin not in doc:
        raise SystemExit(f"{DOC} has no {begin} block")
    head, rest = doc.split(begin, 1)
    _, tail = rest.split(end, 1)
    DOC.write_text(f"{head}{begin}\n{body}\n{end}{tail}")
    print(f"wrote the {part} block of {DOC.relative_to(ROOT)}", file=sys.stderr)


def main(args):
    part = args[0] if args else "all"
    if part == "ratios":
        print(criterion_table(args[1]))
    elif part == "instructions":
        write("instructions", instructions())
    elif part == "criterion":
        write("criterion", criterion(args[1:] or CRITERION_BENCHES))
    elif part == "loopback":
        write("loopback", loopback())
    elif part == "all":
        write("instructions", instructions())
        write("criterion", criterion(CRITERION_BENCHES))
        write("loopback", loopback())
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
