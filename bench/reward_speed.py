"""Time one reward call per benchmark: median and p99 over realistic completions.

The accuracy reward runs inside every RL step (TRL calls it for each of a step's completions), so its
cost per call must stay in the tens of microseconds. Completions: the labelled grading corpus
(``tests/data/reward_corpus``: model-style endings, hedges, LaTeX, echoes, continuations, bombs) and
gold-style answers in the tiny world's formats. Each completion is graded ``--repeats`` times; the
figures are per call, in microseconds, in this process (one thread).

    python bench/reward_speed.py [--repeats 20]

It also prints the slowest single call seen and how many calls the budget cut off.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from meml.rewards import accuracy_reward, budget_counts

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "reward_corpus"
OPTIONS = "a ) 11 , b ) 14 , c ) 9 , d ) 17 , e ) 12"
WORLD_STYLE = [
    ("gsm8k", "7+4 = <<7+4=11>>11\n11-2 = <<11-2=9>>9\n11*2 = <<9*2=18>>18\n#### 18", "18", None),
    ("gsm8k", "Step 1: 7 + 4 = 11\nStep 2: 11 - 2 = 9\nCheck: 9 + 2 = 11\n#### 9", "9", None),
    ("mathqa", "7 + 4 = 11 , 11 - 2 = 9 . answer c\n#### c", "c", OPTIONS),
    ("mathqa", "step 1 : 7 + 4 = 11\nstep 2 : 11 - 2 = 9\ncheck : 9 + 2 = 11\n9 is option c\n#### c", "c", OPTIONS),
    ("strategyqa", "7 + 4 = 11. 11 - 2 = 9. 9 is not more than 12.\n#### no", "no", None),
    ("strategyqa", "Q1: 7 + 4 = 11\nQ2: is 11 more than 9? yes\n#### yes", "yes", None),
]


def _cases() -> dict[str, list[tuple]]:
    cases: dict[str, list[tuple]] = {"gsm8k": [], "mathqa": [], "strategyqa": []}
    for path in sorted(CORPUS.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                item = json.loads(line)
                cases[item["task"]].append((item["task"], item["completion"], item["reference"], item["options"]))
    for case in WORLD_STYLE:
        cases[case[0]] += [case] * 20  # what the tiny world's rollouts look like, weighted in
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="times each completion is graded")
    args = parser.parse_args()
    cases = _cases()
    for task_cases in cases.values():  # warm caches and start any math-verify worker before timing
        for case in task_cases:
            accuracy_reward(*case)
    cut_before = sum(budget_counts().values())
    print(f"{'benchmark':<11} {'calls':>7} {'median us':>10} {'p99 us':>9} {'max ms':>8}")
    for task, task_cases in cases.items():
        times = []
        for case in task_cases:
            for _ in range(args.repeats):
                start = time.perf_counter()
                accuracy_reward(*case)
                times.append(time.perf_counter() - start)
        times.sort()
        p99 = times[min(len(times) - 1, int(0.99 * len(times)))]
        print(f"{task:<11} {len(times):>7} {statistics.median(times) * 1e6:>10.1f} {p99 * 1e6:>9.1f} "
              f"{times[-1] * 1e3:>8.1f}")
    print(f"calls cut off by the budget while timing: {sum(budget_counts().values()) - cut_before}")


if __name__ == "__main__":
    main()
