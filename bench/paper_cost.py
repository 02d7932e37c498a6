"""Estimate the compute of a workflow config (default: the paper setting) without running anything.

    python bench/paper_cost.py [--configfile workflow/config/paper.yaml] [--out FILE] [--gen-tps qwen2=1600,...]

Counts the jobs of a workflow config (SFT, RL baselines, MEML-GRPO with its Table 5 rows, evaluation,
complementarity sampling) and estimates tokens and GPU-hours from SPLIT_SIZES, lengths in --data-dir, the
completion lengths of the tiny setting's logs (--results) and assumed throughputs (docs/compute.md).
"""

from __future__ import annotations

import argparse
import glob
import itertools
import json
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import yaml
from snakemake.utils import update_config

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from meml import paths  # noqa: E402
from meml.data import normalize_row, read_jsonl  # noqa: E402
from meml.methods import RL_ALGORITHMS, Method  # noqa: E402
from meml.pipeline.reads import meml_run, rl_run  # noqa: E402
from meml.pipeline.settings import DEFAULT_CONFIG, Settings, settings_from_config  # noqa: E402
from meml.sweeps import meml_methods, rl_methods  # noqa: E402
from meml.training.rl_config import RLConfig  # noqa: E402

# Official sizes of the splits of meml/data.py HUB_SOURCES (the hub is not reachable here). gsm8k: equal to the
# local copy. mathqa (allenai/math_qa): validation and test equal the local copies, train 29837 is the documented
# size. strategyqa (ChilleD/StrategyQA, a 70/30 split of the 2290 labelled questions): 1603 / 687 assumed.
SPLIT_SIZES = {"gsm8k": {"train": 7473, "test": 1319},
               "mathqa": {"train": 29837, "validation": 4475, "dev": 4475, "test": 2985},
               "strategyqa": {"train": 1603, "test": 687}}
CHARS_PER_TOKEN, TEMPLATE_TOKENS = 4.0, 30  # a rough estimate (no tokenizer is available offline); chat template
THROUGHPUTS = {"gen_tps": ("qwen2=1600,llama=2000", "rollouts"), "eval_tps": ("qwen2=8000,llama=10000", "evaluation"),
               "train_tps": ("qwen2=7500,llama=9500", "forward+backward")}  # the first entry serves other families
KINDS = {"sft": "SFT", "rl": "RL baselines", "meml": "MEML-GRPO (+ Table 5)", "eval": "evaluation",
         "sample": "complementarity"}


def load_settings(configfile: str | Path | None) -> Settings:
    """The settings tree Snakemake builds: default.yaml deep-merged with ``configfile`` by Snakemake's own
    function, then :func:`meml.pipeline.settings.settings_from_config` (checked, defaults filled in)."""
    config = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8")) or {}
    if configfile:
        update_config(config, yaml.safe_load(Path(configfile).read_text(encoding="utf-8")) or {})
    return settings_from_config(config, str(configfile or DEFAULT_CONFIG))


def _rl_job(at: dict, kind: str, method: str, rows: int, run: RLConfig, experts: int, **extra) -> dict:
    per_step = run.prompts_per_step * experts * run.num_generations  # MEML: questions x experts x G
    return {**at, "kind": kind, "method": method, "rows": rows, "steps": run.steps, "per_step": per_step,
            "rollouts": run.steps * per_step, "max_len": run.max_completion_length, "questions": run.prompts_per_step,
            "experts": experts, **extra}


def plan(settings: Settings, sizes: dict) -> list[dict]:
    """Every job of ``settings`` as a dict: kind (sft, rl, meml, eval, sample), family, dataset, seed, method, rows,
    steps, per_step (rollouts a step), rollouts (eval, sample: generations). ``sizes``: dataset -> split -> rows.
    RL and MEML-GRPO runs are resolved as the workflow resolves them (meml.pipeline.reads, sweep points included)."""
    data, sft, comp, n_exp = settings.data, settings.sft, settings.complementarity, settings.n_experts
    size = {k: {d: min(sizes[d][getattr(data, f"{k}_split")[d]], getattr(data, f"max_{k}_items") or math.inf)
                for d in settings.datasets} for k in ("train", "rl", "test")}
    rl_ms = [m for a in RL_ALGORITHMS for m in rl_methods(settings, a)]
    meml_ms, epochs, jobs = meml_methods(settings), sft.epochs, []

    def experts(m: str) -> int:  # expert prompts a method trains and is evaluated under
        return len(Method.parse(m).experts(n_exp))

    for fam, ds, seed in itertools.product(settings.models.families, settings.datasets, settings.seeds):
        at, rl, test = {"family": fam, "dataset": ds, "seed": seed}, size["rl"][ds], size["test"][ds]
        shared = seed == settings.seeds[0]  # SFT, its evaluation and sampling: once per (family, dataset)
        for m in sft.methods if shared else []:
            rows = size["train"][ds] * experts(m)
            steps = math.ceil(rows * epochs / sft.batch_size) if epochs else sft.steps
            jobs.append({**at, "kind": "sft", "method": m, "rows": rows, "steps": steps,
                         "examples": rows * epochs if epochs else steps * sft.batch_size})
        for m in rl_ms:
            run = rl_run(settings, m, seed)
            rows = rl * experts(m)  # (question, expert prompt) pairs
            jobs.append(_rl_job(at, "rl", m, rows, run.for_rows(rows), 1, algorithm=run.algorithm))
        for m in meml_ms:
            riel, run = meml_run(settings, m, seed)
            jobs.append(_rl_job(at, "meml", m, rl, run.for_rows(rl), len(riel.experts(n_exp)), iml=riel.iml,
                                hsft=riel.hsft))
        jobs += [{**at, "kind": "eval", "method": m, "rows": test,  # every test item under each inference prompt
                  "rollouts": test * experts(m)} for m in (sft.methods if shared else []) + rl_ms + meml_ms]
        n = min(test, comp.max_items or math.inf)
        jobs += [{**at, "kind": "sample", "method": f"Expert{k}-SFT", "rows": n, "rollouts": n * comp.samples}
                 for k in (settings.complementarity_experts() if shared else [])]
    return jobs


def lengths(settings: Settings, data_dir: Path) -> dict:
    """Per dataset: mean prompt (system + question + template) and gold answer tokens of the local train split."""
    system, out = statistics.mean(len(p) for p in settings.experts.prompts) / CHARS_PER_TOKEN + TEMPLATE_TOKENS, {}
    for ds in settings.datasets:
        folder = paths.world_dir(REPO / settings.results_dir) if ds.startswith("synth_") else data_dir
        split, folder = settings.data.train_split[ds], folder / ds.removeprefix("synth_")
        found = [folder / f"{s}.jsonl" for s in (split, "train", "dev") if (folder / f"{s}.jsonl").is_file()]
        if not found:
            raise FileNotFoundError(f"no local {ds} split in {folder} to measure lengths on: pass --data-dir")
        recs = [normalize_row(ds, found[0].stem, i, r, ds) for i, r in enumerate(read_jsonl(found[0]))]
        t = {k: statistics.mean(len(getattr(r, k)) for r in recs) / CHARS_PER_TOKEN for k in ("question", "rationale")}
        source = f"{folder.name}/{found[0].name}" + ("" if found[0].stem == split else f" (for {split})")
        out[ds] = {"prompt": system + t["question"], "answer0": t["rationale"], "source": source}
    return out


def measured(results: Path) -> dict:
    """Per method, means over the seed-0 RL logs of ``results`` (completion length, step time, MEML rates, ...)."""
    acc = defaultdict(lambda: defaultdict(list))
    for f in sorted(glob.glob(str(results / "rl" / "*" / "*" / "*" / "seed0" / "metrics.jsonl"))):
        rows = [json.loads(line) for line in open(f, encoding="utf-8")]
        run = json.loads((Path(f).parent / "run.json").read_text(encoding="utf-8"))
        s, a = run["settings"], acc[Path(f).parts[-3]]
        a["length"] += [r["completion_length"] for r in rows]
        a["share"] += [r["completion_length"] / s["max_completion_length"] for r in rows]
        a["step_time"] += [r["step_time"] for r in rows]
        a["rounds"] += [r["dynamic_rounds"] for r in rows if "dynamic_rounds" in r]
        a["mutual"] += [r["mutual_questions"] / s["prompts_per_step"] for r in rows if "mutual_questions" in r]
        if "buffer_size" in rows[-1]:  # entered = held now + capacity x SFT updates so far
            n = len(run["config"]["experts"]["prompts"]) if s["meml"]["single_expert"] is None else 1
            a["buffer"].append((rows[-1]["buffer_size"] + s["meml"]["buffer_capacity"] * rows[-1]["buffer_sft_updates"])
                               / (len(rows) * s["prompts_per_step"] * n))
        a["runs"].append(1)
    return {m: {k: (sum(v) if k == "runs" else statistics.mean(v)) for k, v in a.items() if v} for m, a in acc.items()}


def costs(jobs: list[dict], settings: Settings, lens: dict, meas: dict, opt) -> dict:
    """Add tokens and GPU-seconds (gen_s, train_s, fixed_s, gpu_s) to every job in place; return the rates used."""
    used = {k: statistics.mean([v[k] for v in meas.values() if k in v] or [default])  # pooled over the runs
            for k, default in (("share", 0.4), ("mutual", 1.0), ("buffer", 0.1), ("rounds", 1.0))}
    used.update(share=opt.completion_ratio or used["share"],  # IS-correction forward: 2N of the 8N FLOPs of a pass
                logprob=0.25 if settings.compute.vllm.rollouts else 0.0)
    gpus, n_exp = settings.compute.num_processes, settings.n_experts
    answers = [None if s["kind"] in ("gold", "programmatic") else opt.teacher_tokens  # None: the gold length
               for s in settings.experts.sources]
    for j in jobs:
        L, tps = lens[j["dataset"]], {k: v.get(j["family"], next(iter(v.values()))) for k, v in opt.tps.items()}
        j.update(gen_s=0.0, train_s=0.0, fixed_s=0.0, extra_tokens=0.0)
        if j["kind"] == "sft":
            experts = Method.parse(j["method"]).experts(n_exp)
            answer = statistics.mean(answers[k] or L["answer0"] for k in experts)
            j["tokens"] = j["examples"] * min(L["prompt"] + answer, settings.sft.max_length)
            j["train_s"] = j["tokens"] / tps["train_tps"]
        elif j["kind"] in ("rl", "meml"):
            share = opt.completion_ratio or meas.get(j["method"], {}).get("share", used["share"])
            j["completion"] = share * j["max_len"]
            j["tokens"] = j["rollouts"] * j["completion"] * (used["rounds"] if j.get("algorithm") == "DAPO" else 1.0)
            j["extra_tokens"] = j["steps"] * j["questions"] * (
                (used["mutual"] * (L["prompt"] + j["completion"]) if j.get("iml") else 0.0)
                + (j["experts"] * used["buffer"] * (L["prompt"] + L["answer0"]) if j.get("hsft") else 0.0))
            j["trained"] = j["rollouts"] * (L["prompt"] + j["completion"]) * (1 + used["logprob"]) + j["extra_tokens"]
            j.update(gen_s=j["tokens"] / tps["gen_tps"], train_s=j["trained"] / tps["train_tps"],
                     fixed_s=j["steps"] * opt.step_overhead * gpus)
        else:
            j["tokens"] = j["rollouts"] * used["share"] * settings.eval.max_new_tokens
            j["gen_s"] = j["tokens"] / tps["eval_tps"]
        j["gpu_s"] = j["gen_s"] + j["train_s"] + j["fixed_s"]
    return used


def section(title: str, note: str, head: list[str], rows: list[list]) -> str:
    def fmt(x) -> str:
        big = [(s, u) for s, u in ((1e9, "G"), (1e6, "M"), (1e3, "k")) if isinstance(x, (int, float)) and x >= s]
        return f"{x / big[0][0]:.3g}{big[0][1]}" if big else f"{x:.3g}" if isinstance(x, float) else str(x)
    lines = [head, ["---"] * len(head)] + [[fmt(c) for c in r] for r in rows]
    return f"## {title}\n\n" + "\n".join("| " + " | ".join(line) + " |" for line in lines) + f"\n\n{note}\n\n"


def report(settings: Settings, jobs: list[dict], lens: dict, meas: dict, sizes: dict, used: dict, opt) -> str:
    def hours(js: list[dict], key: str = "gpu_s") -> float:
        return round(sum(j[key] for j in js) / 3600, 1)
    fams, dss, seeds, data = settings.models.families, settings.datasets, settings.seeds, settings.data
    by = {k: [j for j in jobs if j["kind"] == k] for k in KINDS}
    train, total, cells = by["sft"] + by["rl"] + by["meml"], hours(jobs), len(fams) * len(dss) * len(seeds)
    per_method = defaultdict(list)
    for j in (j for j in train if j["seed"] == seeds[0]):
        per_method[j["method"]].append(j)
    out = [f"# Compute estimate: setting `{settings.setting}`, seeds {seeds}\n\nCounted from the config; tokens and "
           "GPU-hours rest on the assumptions of docs/compute.md. Nothing here was measured on a GPU.\n\n",
           section("Data and lengths (tokens = characters / 4)", f"Teacher answers: {opt.teacher_tokens:g} tokens.",
                   ["dataset", "train / rl / test rows", "prompt tok", "expert-0 answer tok", "lengths from"],
                   [[d, " / ".join(str(sizes[d][getattr(data, f"{k}_split")[d]]) for k in ("train", "rl", "test")),
                     round(lens[d]["prompt"]), round(lens[d]["answer0"]), lens[d]["source"]] for d in dss]),
           section("Tiny-setting measurements (seed-0 RL logs)",
                   f"Pooled: share {used['share']:.3f} (methods without a measurement, evaluation); DAPO rounds a "
                   f"step {used['rounds']:.2f}; MEML questions with a mutual-learning transfer {used['mutual']:.2f}; "
                   f"buffer items a (question, expert) group {used['buffer']:.3f}; log-prob pass "
                   f"+{used['logprob']:.2f}.",
                   ["method", "runs", "mean completion tok", "share of max", "step s (CPU)"],
                   [[m, v["runs"], round(v["length"], 1), f"{v['share']:.3f}", f"{v['step_time']:.2f}"]
                    for m, v in sorted(meas.items())]),
           section(f"Training runs, seed {seeds[0]} (rows and steps for {' / '.join(dss)})",
                   "SFT: rows are examples, tokens are trained tokens. RL: rows are (question, expert prompt) pairs "
                   "(MEML: questions), tokens are generated tokens.",
                   ["method", "rows", "steps", "rollouts/step", f"rollouts ({fams[0]})", "completion tok",
                    "tokens (all families)"] + [f"GPU-h {f}" for f in fams],
                   [[m, " / ".join(str(j["rows"]) for j in f0), " / ".join(str(j["steps"]) for j in f0),
                     f0[0].get("per_step", "-"), sum(j.get("rollouts", 0) for j in f0),
                     round(f0[0]["completion"]) if "completion" in f0[0] else "-", sum(j["tokens"] for j in js)]
                    + [hours([j for j in js if j["family"] == f]) for f in fams]
                    for m, js in per_method.items() for f0 in [[j for j in js if j["family"] == fams[0]]]]),
           section("Totals", f"**Total: {total:.0f} GPU-hours, {total / 8 / 24:.1f} days of one 8-GPU node** at full "
                   f"use; {total / len(seeds):.0f} GPU-h a seed, {3 * total / len(seeds):.0f} GPU-h for three seeds.",
                   ["stage", "jobs", "jobs a (family, dataset, seed)", "rollouts / generations", "tokens",
                    "GPU-h generation", "GPU-h training", "GPU-h fixed", "GPU-h", "share"],
                   [[KINDS.get(k, k), len(js), len(js) // cells, sum(j.get("rollouts", 0) for j in js),
                     sum(j["tokens"] for j in js), hours(js, "gen_s"), hours(js, "train_s"),
                     hours(js, "fixed_s"), hours(js), f"{100 * hours(js) / total:.1f}%"]
                    for k, js in [*((k, by[k]) for k in KINDS), ("total", jobs)]])]
    get = {(j["family"], j["dataset"], j["method"]): j for j in by["rl"] + by["meml"] if j["seed"] == seeds[0]}
    base, rows = ("MEML-GRPO-noHSFT-noIML", "MoE-SFT-GRPO", "Expert1-SFT-GRPO"), []
    for me, b in ((get[f, d, "MEML-GRPO"], [get.get((f, d, b)) for b in base]) for f in fams for d in dss
                  if (f, d, "MEML-GRPO") in get):
        rows.append([me["family"], me["dataset"], f"{me['extra_tokens'] / me['trained']:.3f}"]
                    + [f"{me['gpu_s'] / me['steps'] / (x['gpu_s'] / x['steps']):.2f} / {me['gpu_s'] / x['gpu_s']:.2f}"
                       if x else "-" for x in b])
    return "".join(out) + section("MEML-GRPO's extra cost (paper: 20-30% slower than single-expert GRPO)",
                                  "MEML-GRPO's GPU time over a baseline's, per optimizer step / per run.",
                                  ["family", "dataset", "IML+HSFT / trained tok"] + [f"vs {b}" for b in base], rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configfile", default=str(REPO / "workflow" / "config" / "paper.yaml"))
    p.add_argument("--results", default="results", help="tiny-setting results folder (relative to the repo)")
    p.add_argument("--data-dir", default="../shared/data", help="local benchmark copies (relative to the repo)")
    p.add_argument("--teacher-tokens", type=float, default=400.0, help="mean teacher answer tokens (R1, Doubao)")
    p.add_argument("--completion-ratio", type=float, help="one completion share of the max for every method")
    p.add_argument("--step-overhead", type=float, default=2.0, help="seconds a step on each GPU (weight sync, ...)")
    for key, (value, what) in THROUGHPUTS.items():
        p.add_argument("--" + key.replace("_", "-"), default=value, help=f"{what}: tokens/s per GPU (default {value})")
    p.add_argument("--out", help="also write the report to this file")
    opt = p.parse_args()
    opt.tps = {k: {kv.split("=")[0]: float(kv.split("=")[1]) for kv in getattr(opt, k).split(",")} for k in THROUGHPUTS}
    settings = load_settings(opt.configfile)
    sizes = {d: settings.world.splits if d.startswith("synth_") else SPLIT_SIZES[d] for d in settings.datasets}
    jobs, lens, meas = plan(settings, sizes), lengths(settings, REPO / opt.data_dir), measured(REPO / opt.results)
    text = report(settings, jobs, lens, meas, sizes, costs(jobs, settings, lens, meas, opt), opt)
    print(text, end="")
    if opt.out:
        Path(opt.out).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
