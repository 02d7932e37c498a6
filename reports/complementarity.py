"""Error complementarity of the experts (the paper's motivation), from the sampled files only.

Input: for every (family, dataset, seed) and compared expert k, ``paths.sampled_file``: expert k's
ExpertK-SFT model sampled ``samples`` times per test item under expert k's prompt (``meml sample``),
one row per item with a 0/1 ``correct`` list, and its JSON summary beside it.

Definitions, per (family, dataset, seed). Runs are paired by index r = 1..R (R = samples) across
the experts; n is the number of test items; E_{k,r} is the set of items expert k got wrong in run r;
K is the set of compared experts. For expert k:

- error rate = mean over r of |E_{k,r}| / n;
- errors all experts make = mean over r of |∩_{j in K} E_{j,r}| / |E_{k,r}| (the share of k's
  errors that every compared expert also makes);
- solved by Expert j (j != k) = mean over r of |E_{k,r} \\ E_{j,r}| / |E_{k,r}| (the share of k's
  errors expert j got right in the same run);
- solved by another expert = mean over r of |E_{k,r} \\ ∩_{j in K, j != k} E_{j,r}| / |E_{k,r}|
  (the share of k's errors some other expert got right); per run it equals 1 minus the share all
  experts make; undefined (nan) when k is the only compared expert.

A ratio with |E_{k,r}| = 0 is undefined and that run is left out of the mean; when k made no error in
any run the value is nan (shown as ``-``). "Solved by Expert k" for k itself is nan. Every value is
in percent. Over seeds: mean and 95% Student-t interval of the per-seed values
(:func:`reports.stats.mean_interval`); cells read ``mean ± half-width`` with two or more seeds,
else the mean alone.

Outputs: ``<results>/tables/complementarity.md`` (one block per family), ``.csv`` (one row per
family, dataset and expert: ``<column>``, ``<column>_low``, ``<column>_high``, n_seeds, items,
samples) and ``.tex`` (booktabs, :func:`reports.latex.latex_table`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from meml import paths
from meml.data import read_jsonl
from meml.io import write_text_atomic
from reports.latex import latex_table
from reports.markdown import FAMILY_NAMES, markdown_block
from reports.reported import shows_reported
from reports.stats import mean_interval
from reports.summary import interval_cell
from reports.table4 import read_json_file

ERROR_RATE = "Error rate"
ALL_WRONG = "Errors all experts make"
ANOTHER = "Solved by another expert"


def solved_by(expert: int) -> str:
    return f"Solved by Expert{expert}"


def columns(experts: list[int]) -> list[str]:
    """The table's value columns in order."""
    return [ERROR_RATE, ALL_WRONG, *[solved_by(j) for j in experts], ANOTHER]


# --------------------------------------------------------------------------- reading


def read_sampled(path: str | Path) -> tuple[dict, list[dict]]:
    """One sampled file and its summary; a missing or corrupt file is an error that names it."""
    path = Path(path)
    producer = "run `meml sample` (the workflow's sample rule)"
    if not path.exists():
        raise FileNotFoundError(f"sampled file {path} is missing: {producer}")
    summary_path = path.with_suffix(".json")
    summary = read_json_file(summary_path, "sampled summary", ("samples", "temperature", "n"), producer)
    try:
        rows = read_jsonl(path)
    except ValueError as err:
        raise ValueError(f"sampled file {path} is corrupt: {err}; delete it and rerun") from err
    samples = summary["samples"]
    for lineno, row in enumerate(rows, 1):
        correct = row.get("correct")
        if ("id" not in row or not isinstance(correct, list) or len(correct) != samples
                or any(c not in (0, 1) for c in correct)):
            raise ValueError(f"{path}:{lineno}: a sampled row needs 'id' and 'correct', a list of {samples} "
                             "0/1 values; delete the file and rerun")
    if len(rows) != summary["n"]:
        raise ValueError(f"{path}: {len(rows)} rows but its summary says n = {summary['n']}; delete it and rerun")
    if not rows:
        raise ValueError(f"{path}: no items")
    return summary, rows


def correctness(files: dict[int, Path]) -> tuple[dict[int, np.ndarray], dict]:
    """Per expert a 0/1 array (items x runs), items aligned by id across experts, and the shared settings."""
    arrays, settings, ids, first = {}, None, None, None
    for expert, path in files.items():
        summary, rows = read_sampled(path)
        these = {"samples": summary["samples"], "temperature": summary["temperature"], "n": summary["n"]}
        if settings is None:
            settings, ids, first = these, [r["id"] for r in rows], path
        elif these != settings or sorted(r["id"] for r in rows) != sorted(ids):
            raise ValueError(f"{path}: its items or sampling settings ({these}) differ from {first}'s ({settings}); "
                             "rerun the sample stage")
        by_id = {r["id"]: r["correct"] for r in rows}
        if len(by_id) != len(rows):
            raise ValueError(f"{path}: duplicate item ids; delete it and rerun")
        arrays[expert] = np.asarray([by_id[i] for i in ids], dtype=int)
    return arrays, settings


# --------------------------------------------------------------------------- the measures


def _share(numerators: list[int], denominators: list[int]) -> float:
    """Mean over runs of numerator / denominator in percent, leaving out runs with a zero denominator."""
    ratios = [a / b for a, b in zip(numerators, denominators) if b > 0]
    return 100.0 * float(np.mean(ratios)) if ratios else math.nan


def measures(correct: dict[int, np.ndarray]) -> dict[int, dict[str, float]]:
    """The module's definitions for one (family, dataset, seed): ``{expert: {column: percent}}``.

    ``correct[k]`` is expert k's 0/1 array of shape (items, runs); run r of every expert is paired.
    """
    experts = sorted(correct)
    shapes = {correct[k].shape for k in experts}
    if len(shapes) != 1:
        raise ValueError(f"measures: the experts' arrays differ in shape {sorted(shapes)}")
    n, runs = next(iter(shapes))
    wrong = {k: [set(np.flatnonzero(correct[k][:, r] == 0)) for r in range(runs)] for k in experts}
    out = {}
    for k in experts:
        sizes = [len(wrong[k][r]) for r in range(runs)]
        common = [len(set.intersection(*(wrong[j][r] for j in experts))) for r in range(runs)]
        row = {ERROR_RATE: 100.0 * float(np.mean(sizes)) / n, ALL_WRONG: _share(common, sizes)}
        for j in experts:
            row[solved_by(j)] = math.nan if j == k else _share(
                [len(wrong[k][r] - wrong[j][r]) for r in range(runs)], sizes)
        others = [j for j in experts if j != k]
        row[ANOTHER] = _share([len(wrong[k][r] - set.intersection(*(wrong[j][r] for j in others)))
                               for r in range(runs)], sizes) if others else math.nan
        out[k] = row
    return out


# --------------------------------------------------------------------------- tables


def collect(settings) -> pd.DataFrame:
    """Long table: one row per (family, dataset, seed, expert) with every measure, items and settings."""
    root = Path(settings.results_dir)
    experts = settings.complementarity_experts()
    if not experts:
        raise ValueError("complementarity: no expert to compare (no Expert<k>-SFT in sft.methods and "
                         "complementarity.experts is null)")
    rows = []
    for family in settings.models.families:
        for dataset in settings.datasets:
            for seed in [settings.sft.seed]:  # the ExpertK-SFT models are shared by every seed: sampled once
                files = {k: paths.sampled_file(root, family, dataset, f"Expert{k}-SFT", seed, k) for k in experts}
                correct, sampling = correctness(files)
                for expert, values in measures(correct).items():
                    rows.append({"family": family, "dataset": dataset, "seed": seed, "expert": expert,
                                 "items": sampling["n"], "samples": sampling["samples"],
                                 "temperature": sampling["temperature"], **values})
    return pd.DataFrame(rows)


def aggregate(long: pd.DataFrame, experts: list[int]) -> pd.DataFrame:
    """One row per (family, dataset, expert): ``<column>``, ``<column>_low``, ``<column>_high`` over seeds."""
    out = []
    for (family, dataset, expert), block in long.groupby(["family", "dataset", "expert"], sort=False):
        row = {"family": family, "dataset": dataset, "expert": expert}
        for column in columns(experts):
            mean, low, high = mean_interval(block[column].tolist())
            row.update({column: mean, f"{column}_low": low, f"{column}_high": high})
        row.update(n_seeds=len(block), items=int(block["items"].iloc[0]), samples=int(block["samples"].iloc[0]))
        out.append(row)
    return pd.DataFrame(out)


def display(summary: pd.DataFrame, experts: list[int]) -> pd.DataFrame:
    """Text cells indexed by (family, Dataset) with an Expert column first."""
    data = {"Expert": [f"Expert{k}" for k in summary["expert"]]}
    for column in columns(experts):
        data[column] = [interval_cell(m, lo, hi) for m, lo, hi in
                        zip(summary[column], summary[f"{column}_low"], summary[f"{column}_high"])]
    index = pd.MultiIndex.from_arrays([summary["family"], summary["dataset"]], names=["family", "Dataset"])
    return pd.DataFrame(data, index=index)


def _settings_text(long: pd.DataFrame) -> str:
    def values(column):
        return ", ".join(f"{v:g}" for v in sorted(long[column].unique()))

    items = ", ".join(f"{d} {int(n)}" for d, n in long.groupby("dataset", sort=False)["items"].first().items())
    return (f"Each ExpertK-SFT model sampled {values('samples')} times per test item under expert K's prompt at "
            f"temperature {values('temperature')} (sampled runs paired by index across experts); the first test "
            f"items in file order per dataset: {items}; seeds {sorted(long['seed'].unique().tolist())}")


def to_markdown(table: pd.DataFrame, settings, long: pd.DataFrame) -> str:
    lines = ["# Error complementarity of the experts (%)", ""]
    if all(d.startswith("synth_") for d in settings.datasets):
        lines += ["Tiny offline setting on the synthetic benchmarks (GSM8K/StrategyQA/MathQA formats). "
                  "These are NOT the paper's numbers.", ""]
    lines += [_settings_text(long) + "; mean ± 95% interval half-width over seeds (one seed: the mean).", "",
              "Per run, E = the items an expert got wrong. Error rate = |E_k| / items. Errors all experts make = "
              "share of expert k's errors that every compared expert also gets wrong. Solved by Expert j = share "
              "of k's errors that expert j gets right in the same run. Solved by another expert = share of k's errors "
              "some other expert gets right (100 minus the previous share). Means over runs; `-`: undefined "
              "(no error, or the expert itself).", ""]
    if shows_reported(settings):
        lines += ["The paper reports (GSM8K; reported, secondary source, unverified): about 30% of error samples are "
                  "made by all experts, and over 60% of one expert's errors are solved by another.", ""]
    for family in table.index.get_level_values("family").unique():
        lines += [f"## {FAMILY_NAMES.get(family, family)} ({family})", ""]
        lines += markdown_block(table.loc[family], "Dataset") + [""]
    return "\n".join(lines)


def write_complementarity(settings) -> list[Path]:
    """Write ``<results>/tables/complementarity.md``, ``.csv`` and ``.tex`` from the sampled files."""
    experts = settings.complementarity_experts()
    long = collect(settings)
    summary = aggregate(long, experts)
    table = display(summary, experts)
    caption = ("Error complementarity of the experts (%). " + _settings_text(long) + "."
               + (" Tiny offline setting, NOT the paper's numbers." if all(d.startswith("synth_")
                                                                           for d in settings.datasets) else ""))
    out = Path(settings.results_dir) / "tables"
    return [write_text_atomic(out / "complementarity.md", to_markdown(table, settings, long)),
            write_text_atomic(out / "complementarity.csv", summary.to_csv(index=False)),
            write_text_atomic(out / "complementarity.tex", latex_table(table, caption, "tab:complementarity",
                                                                       "Dataset"))]
