"""Table 6: a single MEML-GRPO expert vs majority voting over the experts' answers.

For every multi-expert RL method (MEML-GRPO with MoE on, MoE-SFT-<algo>): accuracy under each
inference expert prompt and of the majority vote over the experts' extracted answers, item by
item. Voting: answers are grouped with :func:`meml.rewards.same_answer` (the shared extractor's
notion of equality); the largest group wins; a tie goes to the group whose first member comes from
the lowest-numbered expert; an item where no expert gave an answer counts as wrong.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from meml import paths
from meml.data import read_jsonl
from meml.io import write_text_atomic
from meml.methods import Method
from meml.records import task_of
from reports.latex import latex_table
from reports.markdown import family_blocks, setting_lines
from reports.summary import display_table, per_seed, summarize, wide_numbers
from reports.table4 import read_result, row_label

VOTE = "majority vote"


def majority_vote(task: str, answers: list[str | None], correct: list[float]) -> float:
    """Correctness (0/1) of the plurality answer among ``answers`` (one per expert, in expert order)."""
    from meml.rewards import same_answer

    groups: list[list[int]] = []  # indices of experts giving the same answer, in order of first appearance
    for i, answer in enumerate(answers):
        if answer is None:
            continue
        for group in groups:
            if same_answer(task, answers[group[0]], answer):
                group.append(i)
                break
        else:
            groups.append([i])
    if not groups:
        return 0.0
    best = max(groups, key=lambda g: (len(g), -g[0]))
    return float(correct[best[0]])


def read_samples(result_file: Path) -> dict[str, dict]:
    """``{item id: sample row}`` from the samples file beside ``result_file``; errors name the file."""
    samples = paths.samples_file(result_file)
    if not samples.exists():
        raise FileNotFoundError(f"samples file {samples} is missing: run the evaluation that writes {result_file}")
    out = {}
    for lineno, row in enumerate(read_jsonl(samples), 1):
        if not {"id", "extracted", "correct"} <= set(row):
            raise ValueError(f"{samples}:{lineno}: a sample row needs 'id', 'extracted' and 'correct'")
        out[row["id"]] = row
    return out


def table6_methods(settings) -> list[str]:
    """Methods sampled and evaluated under every expert: MEML-GRPO (MoE on) and the MoE-SFT RL baselines."""
    return [m for m in [*settings.rl.methods, *settings.meml.methods] if Method.parse(m).moe]


def collect_votes(settings) -> pd.DataFrame:
    """Long table: per (family, dataset, method, seed) each expert's accuracy and the vote's."""
    root = Path(settings.results_dir)
    n_experts = settings.n_experts
    rows = []
    for family in settings.models.families:
        for dataset in settings.datasets:
            task = task_of(dataset)
            for method in table6_methods(settings):
                for seed in settings.seeds:
                    per_expert = {}
                    for expert in range(n_experts):
                        result = paths.eval_file(root, family, dataset, method, seed, expert)
                        data = read_result(result)
                        per_expert[expert] = read_samples(result)
                        rows.append({"family": family, "dataset": dataset, "task": task, "method": method,
                                     "row": row_label(method, expert, n_experts), "seed": seed,
                                     "accuracy": 100.0 * data["accuracy"], "n": data["n"]})
                    ids = list(per_expert[0])
                    for expert, samples in per_expert.items():
                        if set(samples) != set(ids):
                            raise ValueError(f"{paths.eval_file(root, family, dataset, method, seed, expert)}: "
                                             f"its items differ from expert 0's; rerun the evaluation")
                    votes = [majority_vote(task, [per_expert[e][i]["extracted"] for e in range(n_experts)],
                                           [per_expert[e][i]["correct"] for e in range(n_experts)]) for i in ids]
                    rows.append({"family": family, "dataset": dataset, "task": task, "method": method,
                                 "row": f"{method} ({VOTE})", "seed": seed,
                                 "accuracy": 100.0 * sum(votes) / len(votes), "n": len(votes)})
    return pd.DataFrame(rows)


def to_markdown(table: pd.DataFrame, long: pd.DataFrame, settings) -> str:
    lines = ["# Table 6: single expert vs majority vote over the experts, exact-match accuracy (%)", "",
             "Each expert row is greedy decoding under that expert's prompt (one model, one prompt). The vote row "
             "takes, per test item, the answer most experts gave (ties: the lowest-numbered expert's answer).", "",
             *setting_lines(settings, long)]
    lines += family_blocks(table, "Method (inference)")
    return "\n".join(lines)


def write_table6(settings) -> list[Path]:
    """Write ``<results>/tables/table6.{md,csv,tex}`` and ``table6_runs.csv`` (every seed)."""
    if not table6_methods(settings):
        raise ValueError("table6: no multi-expert RL method configured (MEML-GRPO or MoE-SFT-<algo>)")
    long = collect_votes(settings)
    keys = ["family", "row"]
    summary = summarize(per_seed(long, keys), keys)
    table = display_table(summary, keys)
    out = Path(settings.results_dir) / "tables"
    caption = ("Single expert vs majority vote, exact-match accuracy (%), mean ± 95% interval over seeds "
               + str(sorted(long["seed"].unique().tolist())))
    return [write_text_atomic(out / "table6.md", to_markdown(table, long, settings)),
            write_text_atomic(out / "table6.csv", wide_numbers(summary, keys).to_csv(index=False)),
            write_text_atomic(out / "table6.tex", latex_table(table, caption, "tab:table6", "Method (inference)")),
            write_text_atomic(out / "table6_runs.csv", long.to_csv(index=False))]
