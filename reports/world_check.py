"""``results/tables/world_check.{md,csv}``: does the synthetic world hold its design before any RL is read?

One row per (family, dataset, SFT model, inference expert, slice) of the dev split, from the world-check files
(:func:`meml.pipeline.stages.world_check`): greedy accuracy and pass@k (k sampled answers, any one right), as
fractions. ``slice_kind`` is ``own_blind`` (ExpertK-SFT under prompt K on expert K's blind slice), ``hard`` (a
slice no expert's trajectories solve), ``other`` or ``all`` (the whole split).

The markdown adds issue 16's acceptance lines, each checked per family and dataset:

1. ExpertK-SFT under its own prompt: greedy <= 5% and pass@k <= 2% on its blind slice, >= 90% greedy on every
   other slice except the hard one (an expert without a blind slice fails the first half);
2. the hard slice: pass@k <= 1% under every expert prompt of every SFT model (a world without one fails);
3. the ExpertK-SFT models' overall greedy accuracies under their own prompts within 3 points of each other;
4. MathQA: the pretrained base (model ``base``, no system prompt, so in the styles it was pretrained on) >= 90%
   greedy on every non-hard slice;
5. StrategyQA: no rule from the slice cue and the comparator word predicts the answer better than 55%.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from meml import paths
from meml.io import write_text_atomic
from meml.methods import Method
from reports.markdown import FAMILY_NAMES
from reports.table4 import read_json_file

COLUMNS = ["family", "dataset", "model", "expert", "slice", "slice_kind", "greedy"]
BLIND_GREEDY, BLIND_PASS, OTHER_GREEDY, HARD_PASS, SPREAD = 0.05, 0.02, 0.90, 0.01, 0.03
BASE_GREEDY, SHORTCUT = 0.90, 0.55


def collect(settings) -> tuple[pd.DataFrame, int, dict]:
    """Every world-check row of the configured families and synthetic datasets, k of pass@k, and the StrategyQA
    cue rule's accuracy per (family, dataset)."""
    frames, ks, shortcuts = [], set(), {}
    for family in settings.models.families:
        for dataset in settings.synthetic_datasets:
            path = paths.world_check_file(settings.results_dir, family, dataset)
            data = read_json_file(path, "world check", ("samples", "rows"),
                                  f"run `meml world-check --family {family} --dataset {dataset}` (after SFT)")
            ks.add(data["samples"])
            frames.append(pd.DataFrame(data["rows"]))
            if data.get("shortcut") is not None:
                shortcuts[(family, dataset)] = data["shortcut"]
    if not frames:
        raise ValueError("world check: no synthetic dataset is configured")
    if len(ks) > 1:
        raise ValueError(f"world check: the files mix pass@k for k in {sorted(ks)}; rerun `meml world-check`")
    return pd.concat(frames, ignore_index=True), ks.pop(), shortcuts


def _percent(value: float) -> str:
    return f"{100 * value:.1f}"


def _own_prompt(row) -> bool:
    if row["model"] == "base":
        return False
    method = Method.parse(row["model"])
    return method.kind == "sft" and method.expert == row["expert"]


def acceptance(rows: pd.DataFrame, k: int, shortcuts: dict | None = None) -> list[dict]:
    """Issue 16's acceptance lines per (family, dataset): ``{family, dataset, line, measured, holds}``."""
    passk = f"pass{k}"
    out = []
    for (family, dataset), group in rows.groupby(["family", "dataset"], sort=False):
        def line(text, measured, holds):
            out.append({"family": family, "dataset": dataset, "line": text, "measured": measured, "holds": holds})

        base = group[group.model == "base"]
        group = group[group.model != "base"]
        own = group[group.apply(_own_prompt, axis=1)]
        overall = {}
        for model, mine in own.groupby("model", sort=False):
            blind = mine[mine.slice_kind == "own_blind"]
            if blind.empty:
                line(f"{model}: blind slice greedy <= {BLIND_GREEDY:.0%}, pass@{k} <= {BLIND_PASS:.0%}",
                     "no blind slice", False)
            else:
                b = blind.iloc[0]
                line(f"{model}: blind slice {b['slice']} greedy <= {BLIND_GREEDY:.0%}, pass@{k} <= {BLIND_PASS:.0%}",
                     f"greedy {_percent(b['greedy'])}%, pass@{k} {_percent(b[passk])}%",
                     bool(b["greedy"] <= BLIND_GREEDY and b[passk] <= BLIND_PASS))
            others = mine[mine.slice_kind == "other"]
            worst = others.loc[others.greedy.idxmin()] if not others.empty else None
            line(f"{model}: >= {OTHER_GREEDY:.0%} greedy on every other slice (hard excluded)",
                 "no other slice" if worst is None else f"lowest {_percent(worst['greedy'])}% (slice {worst['slice']})",
                 bool(worst is not None and others.greedy.min() >= OTHER_GREEDY))
            overall[model] = float(mine[mine.slice_kind == "all"].greedy.iloc[0])
        hard = group[group.slice_kind == "hard"]
        line(f"hard slice: pass@{k} <= {HARD_PASS:.0%} under every prompt of every SFT model",
             "no hard slice in this world" if hard.empty else f"highest {_percent(hard[passk].max())}%",
             bool(not hard.empty and hard[passk].max() <= HARD_PASS))
        spread = max(overall.values()) - min(overall.values()) if overall else float("nan")
        line(f"ExpertK-SFT overall greedy within {SPREAD * 100:.0f} points",
             ", ".join(f"{m} {_percent(v)}" for m, v in overall.items()) + f" (spread {_percent(spread)})",
             bool(overall and spread <= SPREAD))
        if dataset.endswith("mathqa"):
            soft = base[base.slice_kind == "other"]
            line(f"pretrained base (no prompt) >= {BASE_GREEDY:.0%} greedy on every non-hard slice",
                 "no base row (a hub model)" if soft.empty else
                 ", ".join(f"{r.slice} {_percent(r.greedy)}" for r in soft.itertuples(index=False)),
                 bool(not soft.empty and soft.greedy.min() >= BASE_GREEDY))
        if (family, dataset) in (shortcuts or {}):
            accuracy = shortcuts[(family, dataset)]
            line(f"no slice-cue-and-comparator rule predicts the answer better than {SHORTCUT:.0%}",
                 f"best rule {_percent(accuracy)}%", bool(accuracy <= SHORTCUT))
    return out


def to_markdown(rows: pd.DataFrame, k: int, lines: list[dict]) -> str:
    passk = f"pass{k}"
    held = sum(line["holds"] for line in lines)
    text = ["# World check: SFT models on the dev split, per slice, before any RL", "",
            f"Greedy accuracy and pass@{k} ({k} sampled answers, any one right), in %. own_blind: ExpertK-SFT under "
            "prompt K on expert K's blind slice; hard: a slice no expert's trajectories solve; base: the pretrained "
            "base with no system prompt (greedy only). The tables never read the dev split.", "", f"## Acceptance (issue 16): {held} of {len(lines)} lines hold", "",
            "| Family | Dataset | Line | Measured | Holds |", "|---|---|---|---|---|"]
    for line in lines:
        text.append(f"| {FAMILY_NAMES.get(line['family'], line['family'])} | {line['dataset']} | {line['line']} | "
                    f"{line['measured']} | {'yes' if line['holds'] else 'no'} |")
    for (family, dataset), group in rows.groupby(["family", "dataset"], sort=False):
        text += ["", f"## {FAMILY_NAMES.get(family, family)}, {dataset}", "",
                 f"| Model | Expert prompt | Slice | Kind | Greedy | pass@{k} | Items |", "|---|---|---|---|---|---|---|"]
        for r in group.itertuples(index=False):
            passed = getattr(r, passk)
            text.append(f"| {r.model} | {r.expert} | {r.slice} | {r.slice_kind} | {_percent(r.greedy)} | "
                        f"{'-' if pd.isna(passed) else _percent(passed)} | {r.n} |")
    return "\n".join(text) + "\n"


def write_world_check(settings) -> list[Path]:
    """Write ``tables/world_check.md`` and ``.csv``; return their paths."""
    rows, k, shortcuts = collect(settings)
    out = Path(settings.results_dir) / "tables"
    md = write_text_atomic(out / "world_check.md", to_markdown(rows, k, acceptance(rows, k, shortcuts)))
    csv = write_text_atomic(out / "world_check.csv", rows[COLUMNS + [f"pass{k}", "n"]].to_csv(index=False))
    return [md, csv]
