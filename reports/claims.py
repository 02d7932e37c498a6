"""The claims table: each of the paper's main claims, measured on these results, with a verdict.

One row per claim, base-model family and column (dataset, or Avg): the measured effect in points,
its 95% interval, the number of seeds and a verdict. Everything is read from the raw result files
through the same readers and statistics as the tables:

1. MEML-GRPO (``meml.report_expert``) above every baseline: Table 4's own test
   (:func:`reports.table4.significance`: MEML-GRPO minus the column's strongest baseline, paired
   bootstrap over seeds and items; the pool is ``reports.strongest_baseline``).
2. Each of Table 5's components adds accuracy (rows read under :func:`reports.table5.report_experts`):
   HSFT = MEML-GRPO minus MEML-GRPO-noHSFT, IML = MEML-GRPO minus MEML-GRPO-noIML, MoE-SFT =
   MEML-GRPO-noHSFT-noIML minus MEML-GRPO-Expert<k>-noHSFT-noIML (the one pair of Table 5 rows that
   differs in the MoE switch only); paired bootstrap.
3. A single MEML-GRPO expert at or above the majority vote over its experts (Table 6's vote,
   :func:`reports.table6.majority_vote`, item by item); paired bootstrap.
4. Fewer all-zero-reward groups than single-expert GRPO: per seed, the mean over the logged RL steps
   of ``frac_all_zero`` (the sparsity figure's reader, :func:`reports.figures.read_metrics`), MEML-GRPO
   minus Expert<k>-SFT-GRPO; Student-t interval over seeds of the per-seed differences.
5. A larger MEML-GRPO gain for the weaker family: claim 1's difference on the weaker family minus on
   the other (same test items; paired bootstrap of the difference of differences); "weaker" is the
   family whose single-expert SFT rows (ExpertK-SFT) have the lower mean Avg in Table 4.

Verdicts: see :func:`verdict`. A claim whose inputs are not configured (or whose files are missing)
gets a "not run" row that names what is missing; no number is made up.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from meml import paths
from meml.io import write_text_atomic
from meml.methods import Method
from meml.records import task_of
from reports.figures import panel_datasets, read_metrics
from reports.markdown import FAMILY_NAMES, setting_lines
from reports.stats import mean_interval, paired_bootstrap
from reports.summary import COLUMN_NAMES, per_seed, summarize
from reports.table4 import baseline_rows, collect, outcomes, row_label, significance
from reports.table5 import report_experts
from reports.table6 import majority_vote, read_samples, table6_methods

HOLDS, FAILS, INCONCLUSIVE, NOT_RUN = "holds", "does not hold", "inconclusive", "not run"
ABOVE, AT_OR_ABOVE, BELOW = ">", ">=", "<"  # the side of 0 a claim puts its effect on
COLUMNS = ["claim", "dataset", "family", "measured", "lo", "hi", "seeds", "verdict", "detail"]
SPARSITY = "frac_all_zero"
AVG = "Avg"
# what a missing or unreadable input raises; the claim's rows then read "not run" with the message
INPUT_ERRORS = (FileNotFoundError, ValueError, KeyError)


@dataclass(frozen=True)
class Claim:
    label: str  # the CSV's ``claim`` column
    paper: str  # the paper's claim, paraphrased
    side: str  # ABOVE, AT_OR_ABOVE or BELOW


def claims(settings) -> dict[str, Claim]:
    k = settings.meml.report_expert
    return {
        "1": Claim(f"1. MEML-GRPO (Expert{k}) above every baseline",
                   "MEML-GRPO outperforms every single- and multi-expert baseline (SFT, GRPO, Dr.GRPO, DAPO) on each "
                   "benchmark and on average (Table 4)", ABOVE),
        "2a": Claim("2a. HSFT adds (MEML-GRPO vs MEML-GRPO-noHSFT)",
                    "Each component adds accuracy: the hard-example buffer (HSFT) (Table 5)", ABOVE),
        "2b": Claim("2b. IML adds (MEML-GRPO vs MEML-GRPO-noIML)",
                    "Each component adds accuracy: inter-expert mutual learning (IML) (Table 5)", ABOVE),
        "2c": Claim(f"2c. MoE-SFT adds (MEML-GRPO-noHSFT-noIML vs MEML-GRPO-Expert{k}-noHSFT-noIML)",
                    "Each component adds accuracy: the multi-expert SFT start (MoE-SFT) (Table 5)", ABOVE),
        "3": Claim(f"3. one MEML-GRPO expert (Expert{k}) at or above the majority vote",
                   "A single MEML-GRPO expert matches or beats majority voting over all experts, at one generation "
                   "instead of N (Table 6)", AT_OR_ABOVE),
        "4": Claim(f"4. fewer all-zero-reward groups than Expert{k}-SFT-GRPO",
                   "Sampling under several experts reduces reward sparsity: fewer groups without any reward than "
                   "single-expert GRPO", BELOW),
        "5": Claim("5. larger MEML-GRPO gain for the weaker family",
                   "MEML-GRPO's gain over the baselines is larger for the weaker base model (Llama) than for Qwen",
                   ABOVE),
    }


# ---------------------------------------------------------------- verdicts and rows


def verdict(measured: float, lo: float, hi: float, side: str) -> str:
    """The verdict of an effect ``measured`` with 95% interval ``[lo, hi]`` for a claim on ``side`` of 0.

    ``>`` (``<``): holds when the interval is entirely above (below) 0, does not hold when it is
    entirely on the other side, inconclusive when it includes 0. ``>=`` ("at or above"): holds when
    the lower bound is >= 0, or the estimate is >= 0 and the interval includes 0 (no evidence of being
    below); does not hold when the interval is entirely below 0; inconclusive when the estimate is
    below 0 and the interval includes 0. No interval (nan, e.g. claim 4 with one seed): inconclusive.
    """
    if any(v is None or math.isnan(v) for v in (measured, lo, hi)):
        return INCONCLUSIVE
    if side == ABOVE:
        return HOLDS if lo > 0 else FAILS if hi < 0 else INCONCLUSIVE
    if side == BELOW:
        return HOLDS if hi < 0 else FAILS if lo > 0 else INCONCLUSIVE
    if side == AT_OR_ABOVE:
        return FAILS if hi < 0 else HOLDS if lo >= 0 or measured >= 0 else INCONCLUSIVE
    raise ValueError(f"unknown claim side {side!r}")


def row(claim: Claim, family: str, dataset: str, measured: float, lo: float, hi: float, seeds: int,
        detail: str) -> dict:
    return {"claim": claim.label, "dataset": dataset, "family": family, "measured": measured, "lo": lo, "hi": hi,
            "seeds": seeds, "verdict": verdict(measured, lo, hi, claim.side), "detail": detail}


def not_run(claim: Claim, family: str, dataset: str, detail: str) -> dict:
    return {"claim": claim.label, "dataset": dataset, "family": family, "measured": math.nan, "lo": math.nan,
            "hi": math.nan, "seeds": 0, "verdict": NOT_RUN, "detail": detail}


def not_run_rows(claim: Claim, families, detail: str) -> list[dict]:
    return [not_run(claim, family, AVG, detail) for family in families]


def columns(settings) -> dict[str, list[str]]:
    """Column name -> the datasets it averages: each dataset in the paper's order, then Avg (all of them)."""
    order = panel_datasets(settings)
    return {**{COLUMN_NAMES.get(task_of(d), d): [d] for d in order}, AVG: order}


def outcome_reader(settings):
    """:func:`reports.table4.outcomes` (seeds x items, items sorted by id), each file read once."""
    return functools.cache(lambda family, dataset, method, expert: outcomes(settings, family, dataset, method, expert))


def accuracy(parts: list[np.ndarray]) -> float:
    """Accuracy (%) of per-dataset outcome matrices: the mean over datasets of each one's mean."""
    return 100 * float(np.mean([p.mean() for p in parts]))


def bootstrap(settings, a: list[np.ndarray], b: list[np.ndarray]) -> dict:
    """Table 4's paired bootstrap of ``a - b`` in points."""
    test = paired_bootstrap(a, b, iterations=settings.reports.bootstrap_iterations)
    return {k: 100 * test[k] for k in ("difference", "low", "high")} | {"p": test["p"]}


def full_meml(settings) -> str | None:
    """The MEML-GRPO method Table 4 tests (MoE, HSFT and IML on), as :func:`reports.table4.significance` picks it."""
    full = [m for m in settings.meml.methods if (v := Method.parse(m)).hsft and v.iml and v.moe]
    return full[0] if full else None


# ---------------------------------------------------------------- claims 1 and 5: Table 4


def table4_claims(settings, read) -> tuple[list[dict], pd.DataFrame | None]:
    """Claim 1 (Table 4's significance test) and claim 5 (its difference, weaker family minus the other)."""
    c1, c5 = claims(settings)["1"], claims(settings)["5"]
    families = list(settings.models.families)
    meml = full_meml(settings)
    if meml is None:
        missing = "no full MEML-GRPO method (MoE, HSFT and IML on) in meml.methods"
        return not_run_rows(c1, families, missing) + not_run_rows(c5, families[:1], missing), None
    try:
        long = collect(settings)
    except INPUT_ERRORS as err:
        return not_run_rows(c1, families, str(err)) + not_run_rows(c5, families[:1], str(err)), None
    row_method = long.drop_duplicates("row").set_index("row")[["method", "expert"]]
    if not baseline_rows(settings, row_method):
        missing = (f"no baseline row in Table 4 for reports.strongest_baseline = "
                   f"{settings.reports.strongest_baseline!r} (sft.methods, rl.methods)")
        return not_run_rows(c1, families, missing) + not_run_rows(c5, families[:1], missing), long
    summary = summarize(per_seed(long, ["family", "row"]), ["family", "row"])
    try:
        tests = significance(settings, long, summary)
    except INPUT_ERRORS as err:
        return not_run_rows(c1, families, str(err)) + not_run_rows(c5, families[:1], str(err)), long
    means = summary.set_index(["family", "row", "column"])["mean"]
    n_seeds = len(settings.seeds)
    pool = f"pool: reports.strongest_baseline = {settings.reports.strongest_baseline}"
    rows = []
    for _, t in tests.iterrows():
        family, column = t["family"], t["column"]
        detail = (f"{t['meml']} {means[(family, t['meml'], column)]:.1f} vs strongest baseline {t['baseline']} "
                  f"{means[(family, t['baseline'], column)]:.1f}; p = {t['p']:.3f}; {pool}")
        rows.append(row(c1, family, column, t["difference"], t["low"], t["high"], n_seeds, detail))
    return rows + weaker_family_claims(settings, read, long, summary, tests, row_method), long


def weaker_family_claims(settings, read, long, summary, tests, row_method) -> list[dict]:
    """Claim 5: (MEML-GRPO minus the strongest baseline) on the weaker family minus on the stronger one."""
    c5 = claims(settings)["5"]
    families = list(settings.models.families)
    if len(families) != 2:
        return not_run_rows(c5, families, f"needs two families in models.families, got {families}")
    single = [m for m in settings.sft.methods if not Method.parse(m).moe]
    if not single:
        return not_run_rows(c5, families[:1], "no single-expert SFT method (Expert<k>-SFT) in sft.methods: the "
                                              "weaker family is defined by their mean Avg")
    avg = summary[(summary["column"] == AVG) & summary["row"].isin(single)].groupby("family")["mean"].mean()
    strength = {f: float(avg[f]) for f in families}
    weak, strong = sorted(families, key=lambda f: strength[f])
    label = f"{weak} vs {strong}"
    tests = tests.set_index(["family", "column"])
    cols = columns(settings)

    def gain(family, column):
        """Per-dataset matrices of MEML-GRPO minus the column's strongest baseline (Table 4's pairing)."""
        t = tests.loc[(family, column)]
        parts = []
        for dataset in cols[column]:
            a = read(family, dataset, *row_method.loc[t["meml"]])
            b = read(family, dataset, *row_method.loc[t["baseline"]])
            parts.append(a - b)
        return parts, t["difference"]

    rows = []
    for column in cols:
        try:
            (x, gx), (y, gy) = gain(weak, column), gain(strong, column)
            for dataset, a, b in zip(cols[column], x, y):
                if a.shape != b.shape:
                    raise ValueError(f"{dataset}: the families' outcome matrices differ in shape ({a.shape} vs "
                                     f"{b.shape}); the test items must be the same")
            test = bootstrap(settings, x, y)
        except INPUT_ERRORS as err:
            rows.append(not_run(c5, label, column, str(err)))
            continue
        detail = (f"weaker: {weak} (mean Avg of {', '.join(single)} {strength[weak]:.1f} vs {strength[strong]:.1f}); "
                  f"MEML-GRPO minus strongest baseline: {weak} {gx:+.1f}, {strong} {gy:+.1f}; p = {test['p']:.3f}")
        rows.append(row(c5, label, column, test["difference"], test["low"], test["high"], len(settings.seeds),
                        detail))
    return rows


# ---------------------------------------------------------------- claim 2: Table 5


def ablation_pairs(settings) -> dict[str, tuple[str, str]]:
    """Claim key -> (method with the component, method without it), Table 5's rows."""
    k = settings.meml.report_expert
    return {"2a": ("MEML-GRPO", "MEML-GRPO-noHSFT"), "2b": ("MEML-GRPO", "MEML-GRPO-noIML"),
            "2c": ("MEML-GRPO-noHSFT-noIML", f"MEML-GRPO-Expert{k}-noHSFT-noIML")}


def ablation_claims(settings, read) -> list[dict]:
    configured = settings.meml.methods
    experts = report_experts(settings) if configured else {}
    rows = []
    for key, (with_it, without) in ablation_pairs(settings).items():
        claim = claims(settings)[key]
        missing = [m for m in (with_it, without) if m not in configured]
        if missing:
            rows += not_run_rows(claim, settings.models.families, f"{', '.join(missing)} not in meml.methods")
            continue
        a_expert, b_expert = experts[with_it][0], experts[without][0]
        rows += compare(settings, read, claim, (with_it, a_expert), (without, b_expert))
    return rows


def compare(settings, read, claim: Claim, a: tuple[str, int], b: tuple[str, int]) -> list[dict]:
    """Rows of ``a`` minus ``b`` ((method, inference expert) each) per family and column, paired bootstrap."""
    n = settings.n_experts
    names = row_label(a[0], a[1], n), row_label(b[0], b[1], n)
    rows = []
    for family in settings.models.families:
        for column, datasets in columns(settings).items():
            try:
                x = [read(family, d, *a) for d in datasets]
                y = [read(family, d, *b) for d in datasets]
                test = bootstrap(settings, x, y)
            except INPUT_ERRORS as err:
                rows.append(not_run(claim, family, column, str(err)))
                continue
            detail = f"{names[0]} {accuracy(x):.1f} vs {names[1]} {accuracy(y):.1f}; p = {test['p']:.3f}"
            rows.append(row(claim, family, column, test["difference"], test["low"], test["high"],
                            len(settings.seeds), detail))
    return rows


# ---------------------------------------------------------------- claim 3: Table 6


def vote_outcomes(settings, family: str, dataset: str, method: str) -> np.ndarray:
    """Per-item correctness (seeds x items, items sorted by id) of Table 6's majority vote over the experts."""
    task = task_of(dataset)
    out = []
    for seed in settings.seeds:
        files = [paths.eval_file(settings.results_dir, family, dataset, method, seed, e)
                 for e in range(settings.n_experts)]
        per_expert = [read_samples(f) for f in files]
        ids = sorted(per_expert[0])
        for file, samples in zip(files, per_expert):
            if sorted(samples) != ids:
                raise ValueError(f"{file}: its items differ from expert 0's; rerun the evaluation")
        out.append([majority_vote(task, [s[i]["extracted"] for s in per_expert],
                                  [s[i]["correct"] for s in per_expert]) for i in ids])
    return np.asarray(out, dtype=float)


def vote_claims(settings, read) -> list[dict]:
    claim = claims(settings)["3"]
    meml = full_meml(settings)
    if meml is None or meml not in table6_methods(settings):
        return not_run_rows(claim, settings.models.families,
                            "no Table 6 MEML-GRPO row: no full MEML-GRPO method (MoE, HSFT and IML on) in meml.methods")
    expert = settings.meml.report_expert
    votes = functools.cache(lambda family, dataset: vote_outcomes(settings, family, dataset, meml))
    rows = []
    for family in settings.models.families:
        for column, datasets in columns(settings).items():
            try:
                x = [read(family, d, meml, expert) for d in datasets]
                y = [votes(family, d) for d in datasets]
                test = bootstrap(settings, x, y)
            except INPUT_ERRORS as err:
                rows.append(not_run(claim, family, column, str(err)))
                continue
            detail = (f"{row_label(meml, expert, settings.n_experts)} {accuracy(x):.1f} vs {meml} (majority vote) "
                      f"{accuracy(y):.1f}; p = {test['p']:.3f}")
            rows.append(row(claim, family, column, test["difference"], test["low"], test["high"],
                            len(settings.seeds), detail))
    return rows


# ---------------------------------------------------------------- claim 4: RL logs


def all_zero_share(settings, family: str, dataset: str, method: str, seed: int) -> tuple[float, int]:
    """Mean over the logged steps of one RL run's share (%) of all-zero-reward groups, and the number of steps."""
    frame = read_metrics(paths.rl_dir(settings.results_dir, family, dataset, method, seed) / "metrics.jsonl",
                         SPARSITY)
    return 100 * float(frame[SPARSITY].mean()), len(frame)


def sparsity_claims(settings) -> list[dict]:
    claim = claims(settings)["4"]
    meml = full_meml(settings)
    single = f"Expert{settings.meml.report_expert}-SFT-GRPO"
    missing = ([] if meml else ["a full MEML-GRPO method in meml.methods"]) + \
              ([] if single in settings.rl.methods else [f"{single} in rl.methods"])
    if missing:
        return not_run_rows(claim, settings.models.families, "needs " + " and ".join(missing))
    rows = []
    for family in settings.models.families:
        for column, datasets in columns(settings).items():
            try:
                share = {m: [[all_zero_share(settings, family, d, m, s) for d in datasets] for s in settings.seeds]
                         for m in (meml, single)}
            except INPUT_ERRORS as err:
                rows.append(not_run(claim, family, column, str(err)))
                continue
            per_seed_mean = {m: [float(np.mean([v for v, _ in seed])) for seed in values]
                             for m, values in share.items()}
            diffs = [a - b for a, b in zip(per_seed_mean[meml], per_seed_mean[single])]
            measured, lo, hi = mean_interval(diffs)
            steps = sorted({n for values in share.values() for seed in values for _, n in seed})
            detail = (f"{meml} {np.mean(per_seed_mean[meml]):.1f}% vs {single} {np.mean(per_seed_mean[single]):.1f}% "
                      f"of groups all-zero, mean over {'/'.join(map(str, steps))} logged steps; Student-t over seeds"
                      + ("; one seed: no interval" if len(diffs) < 2 else "")
                      + ("; every seed gives the same difference (zero-width interval)" if len(diffs) > 1 and lo == hi
                         else ""))
            rows.append(row(claim, family, column, measured, lo, hi, len(diffs), detail))
    return rows


# ---------------------------------------------------------------- the table


def build_claims(settings) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Every claim's rows in claim order (columns :data:`COLUMNS`), and Table 4's long table when it was read."""
    read = outcome_reader(settings)
    first, long = table4_claims(settings, read)
    c5 = claims(settings)["5"].label
    rows = [r for r in first if r["claim"] != c5] + ablation_claims(settings, read) + vote_claims(settings, read)
    rows += sparsity_claims(settings) + [r for r in first if r["claim"] == c5]
    return pd.DataFrame(rows, columns=COLUMNS), long


def number(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:+.1f}"


def interval(lo: float, hi: float) -> str:
    return "-" if any(v is None or math.isnan(v) for v in (lo, hi)) else f"[{lo:+.1f}, {hi:+.1f}]"


def family_name(family: str) -> str:
    return " vs ".join(FAMILY_NAMES.get(f, f) for f in family.split(" vs "))


def to_markdown(frame: pd.DataFrame, settings, long: pd.DataFrame | None) -> str:
    paper = {c.label: c.paper for c in claims(settings).values()}
    iterations = settings.reports.bootstrap_iterations
    lines = ["# Claims: the paper's main claims measured on these results", ""]
    if long is not None and len(long):
        lines += setting_lines(settings, long)
    verdicts = (
        "Each row is one effect in points (accuracy; claim 4: share of RL groups whose rewards are all zero) with its "
        "95% interval. Claims 1, 2, 3 and 5 use Table 4's paired bootstrap (reports.stats.paired_bootstrap, "
        f"{iterations} draws: seeds resampled, then test items within each seed; Avg is the mean of the per-dataset "
        "differences); claim 4 pairs the runs by seed (per seed: the mean over the logged RL steps; Student-t "
        "interval of the per-seed differences). A claim that the effect is above (below) 0 **holds** when the "
        "interval lies entirely above (below) 0, **does not hold** when it lies entirely on the other side, and is "
        "**inconclusive** when it includes 0. Claim 3 (\"at or above\") holds when the lower bound is >= 0 or the "
        "estimate is >= 0 with an interval that includes 0 (no evidence of being below), does not hold when the "
        "interval lies entirely below 0, and is inconclusive when the estimate is below 0 but the interval includes "
        "0. **not run**: the claim's methods are not configured or a file is missing (named in the detail). Claim 5 "
        "calls weaker the family whose single-expert SFT rows (ExpertK-SFT) have the lower mean Avg in Table 4.")
    lines += [verdicts, ""]
    if len(settings.seeds) < 2:
        lines += [("One seed: the accuracy intervals resample test items only (no seed-to-seed variation enters), "
                   "and claim 4 has no interval (inconclusive)."), ""]
    header = ["Claim", "Paper's claim (paraphrased)", "Family", "Dataset", "Effect (points)", "95% interval", "Seeds",
              "Verdict", "Detail"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, r in frame.iterrows():
        cells = [r["claim"], paper.get(r["claim"], ""), family_name(r["family"]), r["dataset"], number(r["measured"]),
                 interval(r["lo"], r["hi"]), str(int(r["seeds"])) if r["seeds"] else "-", r["verdict"],
                 str(r["detail"]).replace("|", "/")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_claims(settings) -> list[Path]:
    """Write ``<results>/tables/claims.{md,csv}``."""
    frame, long = build_claims(settings)
    out = Path(settings.results_dir) / "tables"
    return [write_text_atomic(out / "claims.md", to_markdown(frame, settings, long)),
            write_text_atomic(out / "claims.csv", frame.to_csv(index=False, float_format="%.4f"))]
