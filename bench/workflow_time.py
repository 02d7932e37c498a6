"""Time the default workflow from scratch and print where the time goes.

    python bench/workflow_time.py [--cores 2] [--configfile CONFIG] [--keep DIR]
    python bench/workflow_time.py --summarize results          # per-rule job times of an existing run

Runs `snakemake --cores N` into a fresh results folder, then prints the wall time and, from the
rules' Snakemake benchmark files, the summed and longest job time per rule, and the summed job time
divided by the cores (a lower bound of the wall time at full use of the cores). Targets (issue 15): the
default config (three seeds) at most 9,000 job-seconds at one thread per job, workflow/config/quick.yaml
under 15 minutes of wall time on a 2-core CPU machine; issue 16: the default at most 7,200 job-seconds. Measured
2026-11-30 after issue 16's world redesign: 4,717 job-seconds (39.6 min), and quick.yaml 14.8 min (1,337
job-seconds; 16.2 min before its world check was cut to 150 dev items); before it (2026-11-29): 3,766
job-seconds (31.6 min) and 11.5 min for quick.yaml (1,109 job-seconds).
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", default="all")
    parser.add_argument("--configfile", default=None)
    parser.add_argument("--keep", default=None, help="results folder to use (default: a temporary one)")
    parser.add_argument("--summarize", default=None, metavar="DIR",
                        help="print the per-rule job times of an existing results folder; run nothing")
    args = parser.parse_args()
    if args.summarize:
        summarize(Path(args.summarize), 2 if args.cores == "all" else int(args.cores))
        return 0
    results = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="meml-bench-"))
    command = [sys.executable, "-m", "snakemake", "--cores", str(args.cores), "--config", f"results_dir={results}"]
    if args.configfile:
        command += ["--configfile", args.configfile]
    start = time.time()
    done = subprocess.run(command, cwd=REPO)
    wall = time.time() - start
    if done.returncode != 0:
        print(f"workflow failed (exit {done.returncode}) after {wall:.0f} s", file=sys.stderr)
        return done.returncode
    summarize(results, None if args.cores == "all" else int(args.cores))
    print(f"results: {results}")
    print(f"workflow wall time: {wall:.1f} s ({wall / 60:.1f} min) on --cores {args.cores}")
    return 0


def summarize(results: Path, cores: int | None) -> None:
    """Summed and longest job seconds per rule, from the Snakemake benchmark files under ``results``."""
    per_rule = defaultdict(list)
    for tsv in sorted((results / "benchmarks").rglob("*.tsv")):
        rule = tsv.relative_to(results / "benchmarks").parts[0].removesuffix(".tsv")
        with open(tsv) as handle:
            row = next(csv.DictReader(handle, delimiter="\t"))
        per_rule[rule].append(float(row["s"]))
    print(f"{'rule':<12} {'jobs':>4} {'sum s':>8} {'max s':>8}")
    for rule, times in sorted(per_rule.items(), key=lambda kv: -sum(kv[1])):
        print(f"{rule:<12} {len(times):>4} {sum(times):>8.1f} {max(times):>8.1f}")
    total = sum(sum(t) for t in per_rule.values())
    print(f"all jobs: {total:.0f} job-seconds" + (f", / {cores} cores = {total / cores / 60:.1f} min" if cores else ""))


if __name__ == "__main__":
    sys.exit(main())
