"""Paired per-item comparison of two evaluated methods on the same test items.

Greedy accuracy of a tiny model swings by points from small weight changes, so "did RL improve
on its start?" is judged item by item: how many items the second method gains and loses, with an
exact two-sided sign test on those discordant items.
"""

from __future__ import annotations

import math
from pathlib import Path

from meml import paths
from meml.data import read_jsonl


def read_outcomes(result_file: str | Path) -> dict[str, float]:
    """``{item id: correct}`` from the samples file beside an evaluation result file."""
    samples = paths.samples_file(result_file)
    if not samples.exists():
        raise FileNotFoundError(f"samples file {samples} is missing: run the evaluation that writes {result_file}")
    out = {}
    for lineno, row in enumerate(read_jsonl(samples), 1):
        if "id" not in row or "correct" not in row:
            raise ValueError(f"{samples}:{lineno}: a sample row needs 'id' and 'correct'")
        out[row["id"]] = float(row["correct"])
    return out


def sign_test(gained: int, lost: int) -> float:
    """Exact two-sided binomial p-value of ``gained`` vs ``lost`` discordant items under p = 1/2."""
    n = gained + lost
    if n == 0:
        return 1.0
    k = min(gained, lost)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def compare_methods(settings, family: str, dataset: str, seeds, before: str, after: str, expert: int) -> dict:
    """:func:`paired_outcomes` of two methods' evaluations under one expert prompt, items pooled over ``seeds``."""
    pooled = {before: {}, after: {}}
    for seed in seeds:
        for method, outcomes in pooled.items():
            result = paths.eval_file(settings.results_dir, family, dataset, method, seed, expert)
            outcomes.update({(seed, item): v for item, v in read_outcomes(result).items()})
    return paired_outcomes(pooled[before], pooled[after])


def paired_outcomes(before: dict[str, float], after: dict[str, float]) -> dict:
    """Items gained and lost going from ``before`` to ``after`` (same item ids required)."""
    if set(before) != set(after):
        missing = sorted(set(before) ^ set(after))[:3]
        raise ValueError(f"the two evaluations cover different items (e.g. {missing})")
    gained = sum(1 for i in before if after[i] > before[i])
    lost = sum(1 for i in before if after[i] < before[i])
    n = len(before)
    return {"n": n, "gained": gained, "lost": lost,
            "before": sum(before.values()) / n if n else math.nan,
            "after": sum(after.values()) / n if n else math.nan,
            "p_sign": sign_test(gained, lost)}
