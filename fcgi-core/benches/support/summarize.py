#!/usr/bin/env python3
"""Summarises the last `cargo bench -p fcgi-core` run from criterion's saved samples.

Criterion prints the mean time per iteration. On a machine shared with other work the mean
drifts with the load, so this also prints the fastest and the median sample (time per
iteration of each of criterion's samples), the throughput at the fastest sample, and the
ratios the performance goals are about (see PERFORMANCE.md). Standard library only.

    python3 fcgi-core/benches/support/summarize.py [target/criterion]
"""

import json
import os
import statistics
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.join("target", "criterion")

# (benchmark, baseline): the goal is benchmark time <= baseline time.
RATIOS = [
    ("stdout_16MiB/client_connection", "stdout_16MiB/memcpy"),
    ("stdout_16MiB/record_decoder", "stdout_16MiB/memcpy"),
    (
        "stdout_16MiB_read_path/copy_into_read_buffer+client_connection",
        "stdout_16MiB_read_path/copy_into_read_buffer",
    ),
    ("typical_request/server_connection_keepalive", "typical_request/httparse"),
    ("typical_request/server_connection_new", "typical_request/httparse"),
]


def fmt_time(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def fmt_rate(throughput, ns):
    if not throughput:
        return ""
    if "Bytes" in throughput:
        gib = throughput["Bytes"] / (ns * 1e-9) / 2**30
        return f"{gib:.3g} GiB/s"
    if "Elements" in throughput:
        return f"{throughput['Elements'] / (ns * 1e-9) / 1e6:.3g} M/s"
    return ""


def load():
    results = {}
    for dirpath, _dirs, files in os.walk(ROOT):
        if os.path.basename(dirpath) != "new" or "sample.json" not in files:
            continue
        with open(os.path.join(dirpath, "benchmark.json")) as f:
            bench = json.load(f)
        with open(os.path.join(dirpath, "sample.json")) as f:
            sample = json.load(f)
        with open(os.path.join(dirpath, "estimates.json")) as f:
            est = json.load(f)
        per_iter = [t / n for t, n in zip(sample["times"], sample["iters"])]
        results[bench["full_id"]] = {
            "min": min(per_iter),
            "median": statistics.median(per_iter),
            "mean": est["mean"]["point_estimate"],
            "throughput": bench.get("throughput"),
        }
    return results


def main():
    results = load()
    if not results:
        sys.exit(f"no criterion results under {ROOT}")
    width = max(map(len, results))
    print(f"{'benchmark':<{width}}  {'fastest':>9}  {'median':>9}  {'mean':>9}  rate@fastest")
    for name in sorted(results):
        r = results[name]
        print(
            f"{name:<{width}}  {fmt_time(r['min']):>9}  {fmt_time(r['median']):>9}  "
            f"{fmt_time(r['mean']):>9}  {fmt_rate(r['throughput'], r['min'])}"
        )
    print()
    for bench, base in RATIOS:
        if bench in results and base in results:
            b, a = results[bench], results[base]
            print(
                f"{bench} vs {base}: speed ratio {a['min'] / b['min']:.2f}x (fastest), "
                f"{a['median'] / b['median']:.2f}x (median)"
            )


if __name__ == "__main__":
    main()
