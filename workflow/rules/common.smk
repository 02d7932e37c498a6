# Shared helpers for the rules: expected outputs, computed from the config through meml.paths.
from meml import paths, stages
from meml.config import config_digest
from meml.teachers import TEACHER_KINDS
from reports.table6 import table6_methods

FAMILIES = config["models"]["families"]
DATASETS = config["datasets"]
SEEDS = config["seeds"]
import re

METHODS = config["sft"]["methods"]
RL_ALGORITHMS_USED = [a for a in paths.RL_ALGORITHMS if stages.rl_methods(config, a)]
N_EXPERTS = len(config["experts"]["prompts"])
TEACHER_EXPERTS = [k for k, s in enumerate(config["experts"]["sources"]) if s["kind"] in TEACHER_KINDS]
MEML_METHODS = stages.meml_methods(config)  # every method once per sweep point (meml/sweeps.py)
SWEEP = bool(config.get("sweep"))
TABLE6_METHODS = table6_methods(config)
SYNTH_TASKS = [d[len("synth_"):] for d in DATASETS if d.startswith("synth_")]


wildcard_constraints:
    family="|".join(FAMILIES),
    dataset="|".join(DATASETS),
    seed=r"\d+",
    task="|".join(SYNTH_TASKS) if SYNTH_TASKS else "none",
    algorithm="|".join(re.escape(a) for a in paths.RL_ALGORITHMS),
    method="|".join(re.escape(m) for m in MEML_METHODS) if MEML_METHODS else "none",
    expert=r"\d+",


def world_files():
    return [str(paths.world_dir(RESULTS) / t / f"{s}.jsonl") for t in SYNTH_TASKS for s in config["world"]["splits"]]


def dataset_inputs(dataset):
    """Files a dataset's loader reads (synthetic ones are made by the workflow)."""
    return world_files() if dataset.startswith("synth_") else []


def base_model_input(family):
    """The tiny base model's marker file, or nothing when a pretrained model is configured."""
    if config["models"]["pretrained"].get(family):
        return []
    return str(paths.base_model_dir(RESULTS, family) / "run.json")


def sft_outputs(family, dataset, seed):
    return [str(paths.sft_dir(RESULTS, family, dataset, m, seed) / "run.json") for m in METHODS]


def eval_outputs(family, dataset, seed):
    return [str(paths.eval_file(RESULTS, family, dataset, m, seed, e))
            for m in METHODS for e in paths.method_experts(m, N_EXPERTS)]


def rl_methods_of(algorithm):
    return stages.rl_methods(config, algorithm)


def rl_manifest(family, dataset, algorithm, seed):
    return str(paths.rl_manifest(RESULTS, family, dataset, algorithm, seed))


def rl_eval_outputs(family, dataset, algorithm, seed):
    return [str(paths.eval_file(RESULTS, family, dataset, m, seed, e))
            for m in rl_methods_of(algorithm) for e in paths.method_experts(m, N_EXPERTS)]


def meml_run(family, dataset, method, seed):
    return str(paths.rl_dir(RESULTS, family, dataset, method, seed) / "run.json")


def meml_eval_outputs(family, dataset, seed):
    return [str(paths.eval_file(RESULTS, family, dataset, m, seed, e))
            for m in MEML_METHODS for e in paths.method_experts(m, N_EXPERTS)]


def all_eval_outputs():
    """Every evaluation result the tables read: SFT, RL and MEML-GRPO methods."""
    out = [f for fam in FAMILIES for d in DATASETS for s in SEEDS for f in eval_outputs(fam, d, s)]
    out += [f for fam in FAMILIES for d in DATASETS for s in SEEDS for a in RL_ALGORITHMS_USED
            for f in rl_eval_outputs(fam, d, a, s)]
    out += [f for fam in FAMILIES for d in DATASETS for s in SEEDS for f in meml_eval_outputs(fam, d, s)]
    return out
