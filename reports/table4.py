"""Table 4 (the paper's main table) from the raw evaluation result files.

Rows: method and inference expert; columns: GSM8K, StrategyQA, MathQA, Avg (the paper's order);
one block per base-model family; exact-match accuracy in percent, mean and 95% interval over
seeds; MEML-GRPO's cells are marked where a paired bootstrap separates it from the strongest
baseline of the column. Nothing here
is typed by hand: every number is read from a result file under ``results/eval``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from meml import paths
from meml.io import write_text_atomic
from meml.methods import Method
from meml.records import task_of
from reports.latex import latex_table
from reports.markdown import FAMILY_NAMES, markdown_block, setting_lines
from reports.paired import read_outcomes
from reports.reported import SOURCE_NOTE, reported, shows_reported
from reports.stats import paired_bootstrap
from reports.summary import (
    COLUMN_NAMES,
    display_table,
    per_seed,
    summarize,
    wide_numbers,
)


def read_json_file(path: str | Path, what: str, required: tuple[str, ...], producer: str) -> dict:
    """A JSON result file with ``required`` keys; a missing or corrupt file is an error naming it (``what``)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} is missing: {producer}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{what} {path} is corrupt (not JSON: {err}); delete it and rerun") from err
    for key in required:
        if key not in data:
            raise ValueError(f"{what} {path} has no {key!r} field; delete it and rerun")
    return data


def read_result(path: str | Path) -> dict:
    """One evaluation result file; a missing or corrupt file is an error that names it."""
    return read_json_file(path, "result file", ("accuracy", "method", "expert", "dataset", "family", "seed"),
                          "run the workflow (snakemake) to produce it")


def row_label(method: str, expert: int, n_experts: int) -> str:
    """``Expert1-SFT`` for single-expert methods, ``MoE-SFT (Expert1)`` for multi-expert ones."""
    if len(Method.parse(method).experts(n_experts)) == 1:
        return method
    return f"{method} (Expert{expert})"


def table4_methods(settings) -> list[str]:
    """SFT and RL baselines, then the MEML-GRPO methods with every component on (ablations: Table 5)."""
    full = [m for m in settings.meml.methods if (v := Method.parse(m)).hsft and v.iml]
    return [*settings.sft.methods, *settings.rl.methods, *full]


def collect(settings, methods: list[str] | None = None, experts: dict | None = None) -> pd.DataFrame:
    """Long table: one row per result file of the configured runs (``methods``: default Table 4's).

    ``experts`` maps a method to the inference experts to read (default: every one it was evaluated under).
    """
    root = Path(settings.results_dir)
    n_experts = settings.n_experts
    rows = []
    for family in settings.models.families:
        for dataset in settings.datasets:
            for method in methods if methods is not None else table4_methods(settings):
                # an SFT method is one run shared by every seed (the seeds are RL replicates): read it once
                seeds = [settings.sft.seed] if Method.parse(method).kind == "sft" else settings.seeds
                for seed in seeds:
                    for expert in (experts or {}).get(method) or Method.parse(method).experts(n_experts):
                        data = read_result(paths.eval_file(root, family, dataset, method, seed, expert))
                        rows.append({"family": family, "dataset": dataset, "task": task_of(dataset),
                                     "method": method, "expert": expert,
                                     "row": row_label(method, expert, n_experts), "seed": seed,
                                     "accuracy": 100.0 * data["accuracy"], "n": data["n"]})
    return pd.DataFrame(rows)


def pivot(long: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds; columns in the paper's order plus Avg; one row per (family, method row)."""
    return per_seed(long, ["family", "row"]).groupby(level=["family", "row"], sort=False).mean()


def outcomes(settings, family: str, dataset: str, method: str, expert: int) -> np.ndarray:
    """Per-item correctness (seeds x items, items sorted by id) of one method under one expert prompt."""
    rows = []
    ids = None
    for seed in settings.seeds:
        result = paths.eval_file(settings.results_dir, family, dataset, method, seed, expert)
        by_id = read_outcomes(result)
        if ids is None:
            ids = sorted(by_id)
        elif sorted(by_id) != ids:
            raise ValueError(f"{result}: its test items differ from seed {settings.seeds[0]}'s; rerun the evaluation")
        rows.append([by_id[i] for i in ids])
    return np.asarray(rows, dtype=float)


def baseline_rows(settings, row_method: pd.DataFrame) -> list[str]:
    """The rows ``reports.strongest_baseline`` lets Table 4's mark compare against (never MEML-GRPO's)."""
    pool = settings.reports.strongest_baseline
    rows = []
    for row, (method, expert) in row_method[["method", "expert"]].iterrows():
        if Method.parse(method).kind == "meml":
            continue
        if pool == "same_expert" and int(expert) != settings.meml.report_expert:
            continue
        if pool == "rl" and Method.parse(method).kind != "rl":
            continue
        rows.append(row)
    return rows


def significance(settings, long: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """Per family and column: MEML-GRPO (report expert) vs the strongest baseline, paired bootstrap.

    The strongest baseline is the row of :func:`baseline_rows` with the highest mean in that
    column; the bootstrap resamples seeds, then test items within each seed
    (``reports.stats.paired_bootstrap``). Empty when no full MEML-GRPO method is configured.
    """
    full = [m for m in settings.meml.methods if (v := Method.parse(m)).hsft and v.iml and v.moe]
    if not full:
        return pd.DataFrame()
    n_experts = settings.n_experts
    meml_row = row_label(full[0], settings.meml.report_expert, n_experts)
    row_method = long.drop_duplicates("row").set_index("row")[["method", "expert"]]
    datasets = {COLUMN_NAMES[task_of(d)]: d for d in settings.datasets}
    out = []
    for family in settings.models.families:
        block = summary[summary["family"] == family]
        baselines = block[block["row"].isin(baseline_rows(settings, row_method))]
        for column in block["column"].unique():
            candidates = baselines[baselines["column"] == column]
            best = candidates.loc[candidates["mean"].idxmax(), "row"]
            names = list(datasets) if column == "Avg" else [column]

            def matrices(row):
                method, expert = row_method.loc[row, "method"], int(row_method.loc[row, "expert"])
                return [outcomes(settings, family, datasets[n], method, expert) for n in names]

            test = paired_bootstrap(matrices(meml_row), matrices(best),
                                    iterations=settings.reports.bootstrap_iterations)
            out.append({"family": family, "column": column, "meml": meml_row, "baseline": best,
                        **{k: (100 * v if k in ("difference", "low", "high") else v) for k, v in test.items()}})
    return pd.DataFrame(out)


def marked_display(summary: pd.DataFrame, tests: pd.DataFrame) -> pd.DataFrame:
    """The display table with a mark after MEML-GRPO's cell wherever its difference is significant:
    ``*`` above the strongest baseline, ``†`` below it."""
    table = display_table(summary, ["family", "row"])
    for _, t in tests.iterrows():
        if t["significant"]:
            table.loc[(t["family"], t["meml"]), t["column"]] += " *" if t["difference"] > 0 else " †"
    return table


def significance_lines(tests: pd.DataFrame, family: str) -> list[str]:
    block = tests[tests["family"] == family] if len(tests) else tests
    if block.empty:
        return []
    lines = ["Paired bootstrap (draws over seeds, then test items): "
             f"{block['meml'].iloc[0]} minus the strongest baseline of each column.", "",
             "| Column | Strongest baseline | Difference | 95% interval | p | Significant |", "|---|---|---|---|---|---|"]
    for _, t in block.iterrows():
        lines.append(f"| {t['column']} | {t['baseline']} | {t['difference']:+.1f} | [{t['low']:+.1f}, {t['high']:+.1f}] "
                     f"| {t['p']:.3f} | {'yes' if t['significant'] else 'no'} |")
    return lines + [""]


def reported_lines(settings, family: str, table: str = "table4") -> list[str]:
    """The paper's reported rows of one family as a separate, labelled block (paper setting only)."""
    if not shows_reported(settings):
        return []
    data = reported(table)
    data = data[data["base"] == FAMILY_NAMES.get(family, family)]
    if data.empty:
        return []
    block = data.assign(Method=[row_label(m, e, settings.n_experts) if table == "table4" else m
                                for m, e in zip(data["method"], data["expert"])]).set_index("Method")
    columns = [c for c in ("GSM8K", "StrategyQA", "MathQA", "Avg") if block[c].notna().any()]
    return [f"### {SOURCE_NOTE}", "", *markdown_block(block[columns], "Method"), ""]


def to_markdown(table: pd.DataFrame, settings, long: pd.DataFrame, tests: pd.DataFrame) -> str:
    lines = ["# Table 4: exact-match accuracy (%)", "", *setting_lines(settings, long)]
    if len(tests):
        pool = {"any": "any method and inference expert", "same_expert": "rows under the same inference expert",
                "rl": "RL baselines, any inference expert"}[settings.reports.strongest_baseline]
        lines += [f"`*` / `†`: MEML-GRPO is significantly above / below the column's strongest baseline (the best "
                  f"non-MEML row: {pool}; paired bootstrap over test items and seeds, "
                  f"{settings.reports.bootstrap_iterations} draws, the 95% interval of the difference excludes 0; "
                  "details under each block).", ""]
    for family in table.index.get_level_values("family").unique():
        lines += [f"## {FAMILY_NAMES.get(family, family)} ({family})", ""]
        lines += markdown_block(table.loc[family], "Method") + [""]
        lines += significance_lines(tests, family)
        lines += reported_lines(settings, family)
    return "\n".join(lines)


def write_table4(settings) -> list[Path]:
    """Write ``<results>/tables/table4.{md,csv,tex}`` and ``table4_runs.csv`` (every seed, its source file)."""
    long = collect(settings)
    summary = summarize(per_seed(long, ["family", "row"]), ["family", "row"])
    tests = significance(settings, long, summary)
    table = marked_display(summary, tests)
    out = Path(settings.results_dir) / "tables"
    caption = "Exact-match accuracy (%), mean ± 95% interval over seeds " + str(sorted(long["seed"].unique().tolist()))
    written = [write_text_atomic(out / "table4.md", to_markdown(table, settings, long, tests)),
               write_text_atomic(out / "table4.csv", wide_numbers(summary, ["family", "row"]).to_csv(index=False)),
               write_text_atomic(out / "table4.tex", latex_table(table, caption, "tab:table4", "Method")),
               write_text_atomic(out / "table4_runs.csv", long.to_csv(index=False))]
    if len(tests):
        written.append(write_text_atomic(out / "table4_significance.csv", tests.to_csv(index=False)))
    return written
