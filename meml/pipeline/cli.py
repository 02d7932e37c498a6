"""``meml``: one subcommand per pipeline stage. Every Snakemake rule calls one of them."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

from meml.pipeline.settings import ConfigError, load_settings


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None,
                        help="workflow config YAML (default: workflow/config/default.yaml, the tiny offline setting)")


def _add_run(parser: argparse.ArgumentParser, seed: bool = True) -> None:
    parser.add_argument("--family", required=True, help="model family: qwen2 or llama")
    parser.add_argument("--dataset", required=True, help="dataset name, e.g. synth_gsm8k or gsm8k")
    if seed:
        parser.add_argument("--seed", type=int, required=True, help="run seed")
        parser.add_argument("--methods", nargs="+", default=None, help="subset of the stage's methods (default: all configured)")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("meml-grpo")
    except PackageNotFoundError:  # pragma: no cover - run from a checkout that was never installed
        return "unknown"


class _Stages:
    """Subcommands whose one-line help is also their ``--help`` description."""

    def __init__(self, subparsers):
        self.subparsers = subparsers

    def add_parser(self, name: str, help: str) -> argparse.ArgumentParser:
        return self.subparsers.add_parser(name, help=help, description=help[:1].upper() + help[1:] + ".")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meml", description="MEML-GRPO reproduction suite: pipeline stages. "
                                     "Every Snakemake rule runs one of them; `meml STAGE --help` describes each.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = _Stages(parser.add_subparsers(dest="command", required=True, metavar="STAGE"))

    p = sub.add_parser("check-config", help="validate a workflow config and print it resolved")
    _add_config(p)
    p = sub.add_parser("schema", help="write workflow/schemas/config.schema.yaml from the settings tree")
    p = sub.add_parser("make-world", help="generate the synthetic GSM8K/MathQA/StrategyQA-format benchmarks")
    _add_config(p)
    p = sub.add_parser("experts", help="write every expert's trajectories for a dataset's training pool")
    _add_config(p)
    p.add_argument("--dataset", required=True)
    p = sub.add_parser("teacher", help="ask expert K's teacher LLM every training question of a dataset (cached, "
                                       "resumable); the experts stage reads the answers")
    _add_config(p)
    p.add_argument("--dataset", required=True)
    p.add_argument("--expert", type=int, required=True, help="index into experts.sources (an openai or local source)")
    p = sub.add_parser("build-tiny", help="train the tokenizer and build a randomly initialised tiny model")
    _add_config(p)
    p.add_argument("--family", required=True)
    p = sub.add_parser("pretrain", help="pretrain the tiny base model of a family on gold answers")
    _add_config(p)
    p.add_argument("--family", required=True)
    p = sub.add_parser("sft", help="ExpertX-SFT and MoE-SFT (MEF) runs of one family and dataset (seed: sft.seed, "
                                   "shared by every RL seed)")
    _add_config(p)
    _add_run(p, seed=False)
    p.add_argument("--methods", nargs="+", default=None, help="subset of sft.methods (default: all)")
    p = sub.add_parser("rl", help="GRPO, Dr.GRPO or DAPO runs (rl.methods) of one family, dataset, seed and algorithm")
    _add_config(p)
    _add_run(p)
    p.add_argument("--algorithm", required=True, help="GRPO, Dr.GRPO or DAPO")
    p = sub.add_parser("riel", help="MEML-GRPO methods (meml.methods, Table 5 rows) of one family, dataset and seed, "
                                    "in one process")
    _add_config(p)
    _add_run(p, seed=False)
    p.add_argument("--seed", type=int, required=True, help="run seed")
    p.add_argument("--methods", nargs="+", default=None,
                   help="e.g. MEML-GRPO MEML-GRPO-noIML (default: every configured MEML-GRPO method)")
    p = sub.add_parser("evaluate", help="lm-eval evaluation of trained models under their inference expert prompts "
                                        "(default: the SFT methods, shared by every seed)")
    _add_config(p)
    _add_run(p, seed=False)
    p.add_argument("--seed", type=int, default=None, help="run seed of the RL methods (default: sft.seed)")
    p.add_argument("--methods", nargs="+", default=None, help="methods to evaluate (default: sft.methods)")
    p = sub.add_parser("compare", help="paired per-item comparison of two evaluated methods (gained/lost items)")
    _add_config(p)
    p.add_argument("--family", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--seeds", type=int, nargs="+", required=True, help="seeds to pool (items x seeds)")
    p.add_argument("--before", required=True, help="method, e.g. Expert1-SFT")
    p.add_argument("--after", required=True, help="method, e.g. Expert1-SFT-GRPO")
    p.add_argument("--expert", type=int, required=True, help="inference expert prompt of both evaluations")
    p = sub.add_parser("table4", help="build results/tables/table4.{md,csv} from the evaluation result files")
    _add_config(p)
    p = sub.add_parser("table5", help="build results/tables/table5.{md,csv}: the MoE/HSFT/IML ablation")
    _add_config(p)
    p = sub.add_parser("table6", help="build results/tables/table6.{md,csv}: single expert vs majority vote")
    _add_config(p)
    p = sub.add_parser("sample", help="sample every compared expert's ExpertK-SFT model several times per test "
                                      "item (error-complementarity analysis)")
    _add_config(p)
    _add_run(p, seed=False)
    p.add_argument("--seed", type=int, default=None, help="sampling seed base (default: sft.seed; the ExpertK-SFT "
                                                          "models are shared by every seed)")
    p = sub.add_parser("complementarity", help="build results/tables/complementarity.{md,csv,tex} from the sampled "
                                               "files: the experts' error overlap")
    _add_config(p)
    p = sub.add_parser("figures", help="build results/figures/figure2 and sparsity (.png, .pdf) from the RL logs")
    _add_config(p)
    p.add_argument("--only", choices=["figure2", "sparsity"], help="build one figure only")
    p = sub.add_parser("sweeps", help="build results/sweeps/: the sweep table, and a table and plot per swept option")
    _add_config(p)
    p = sub.add_parser("world-check", help="every SFT model under every expert prompt on the dev split of a synthetic "
                                           "dataset, per slice: greedy accuracy and pass@k, before any RL")
    _add_config(p)
    _add_run(p, seed=False)
    p = sub.add_parser("world-check-table", help="build results/tables/world_check.{md,csv} (with the world's "
                                                 "acceptance lines) from the world-check files")
    _add_config(p)
    p = sub.add_parser("reports", help="rebuild every table and figure from the results already there (seconds)")
    _add_config(p)
    p.add_argument("--only", nargs="+", help="outputs to rebuild (table4 table5 table6 complementarity world_check "
                                             "figure2 sparsity claims, or sweeps)")
    return parser


def results_mismatch(settings, config_path) -> str | None:
    """Why ``settings`` cannot rebuild the tables of its ``results_dir`` (None when it can): the results were made
    with other settings (``results_dir/config.yaml``, written by the workflow), or no workflow run wrote there."""
    from pathlib import Path

    from meml.pipeline.settings import load_settings

    written = Path(settings.results_dir) / "config.yaml"
    if not written.exists():
        return (f"{written} does not exist: no workflow run wrote to results_dir {settings.results_dir!r}; "
                "pass the config of the run (--config <results_dir>/config.yaml) or run the workflow first")
    made = load_settings(written)
    if made == settings:
        return None
    changed = sorted(name for name in made.to_mapping() if made.to_mapping()[name] != settings.to_mapping()[name])
    return (f"{config_path or 'the default config'} does not match the results in {settings.results_dir}: they were "
            f"made with {written}, which differs in {changed}; pass --config {written}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if args.command == "schema":
        from meml.pipeline.settings import write_schema

        print(write_schema())
        return 0
    try:
        settings = load_settings(args.config)
    except ConfigError as err:
        print(f"meml: {err}", file=sys.stderr)
        return 2
    if settings.setting == "tiny":  # the embedded setting never touches a hub
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from meml.pipeline import stages

    start = time.time()
    if args.command == "check-config":
        import yaml

        print(yaml.safe_dump(settings.to_mapping(), sort_keys=False), end="")
    elif args.command == "make-world":
        stages.make_world(settings)
    elif args.command == "experts":
        stages.make_experts(settings, args.dataset)
    elif args.command == "teacher":
        stages.teacher_trajectories(settings, args.dataset, args.expert)
    elif args.command == "build-tiny":
        stages.build_tiny(settings, args.family)
    elif args.command == "pretrain":
        stages.pretrain(settings, args.family)
    elif args.command == "sft":
        stages.sft(settings, args.family, args.dataset, args.methods)
    elif args.command == "rl":
        stages.rl(settings, args.family, args.dataset, args.seed, args.algorithm, args.methods)
    elif args.command == "riel":
        stages.riel(settings, args.family, args.dataset, args.seed, args.methods)
    elif args.command == "evaluate":
        stages.evaluate(settings, args.family, args.dataset, args.seed, args.methods)
    elif args.command == "compare":
        from reports.paired import compare_methods

        r = compare_methods(settings, args.family, args.dataset, args.seeds, args.before, args.after, args.expert)
        print(f"{args.family} {args.dataset} expert{args.expert} seeds {args.seeds}: {args.before} {100 * r['before']:.1f}% "
              f"-> {args.after} {100 * r['after']:.1f}% on {r['n']} item-seeds; gained {r['gained']}, lost {r['lost']}, "
              f"sign test p = {r['p_sign']:.2g}")
    elif args.command == "table4":
        from reports.table4 import write_table4

        write_table4(settings)
    elif args.command == "table5":
        from reports.table5 import write_table5

        write_table5(settings)
    elif args.command == "table6":
        from reports.table6 import write_table6

        write_table6(settings)
    elif args.command == "sample":
        stages.sample_experts(settings, args.family, args.dataset, args.seed)
    elif args.command == "complementarity":
        from reports.complementarity import write_complementarity

        write_complementarity(settings)
    elif args.command == "figures":
        from reports.figures import write_figure2, write_sparsity

        if args.only in (None, "figure2"):
            write_figure2(settings)
        if args.only in (None, "sparsity"):
            write_sparsity(settings)
    elif args.command == "sweeps":
        from reports.sweeps import write_sweeps

        write_sweeps(settings)
    elif args.command == "world-check":
        stages.world_check(settings, args.family, args.dataset)
    elif args.command == "world-check-table":
        from reports.world_check import write_world_check

        write_world_check(settings)
    elif args.command == "reports":
        from reports.build import rebuild

        problem = results_mismatch(settings, args.config)
        if problem:
            print(f"meml: {problem}", file=sys.stderr)
            return 2

        rebuild(settings, args.only)
    logging.getLogger("meml").info("%s done in %.1f s", args.command, time.time() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
