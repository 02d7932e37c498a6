# Shared helpers for the rules: expected outputs, computed from the config through meml.paths.
from meml import paths
from meml.config import config_digest

FAMILIES = config["models"]["families"]
DATASETS = config["datasets"]
SEEDS = config["seeds"]
METHODS = config["sft"]["methods"]
N_EXPERTS = len(config["experts"]["prompts"])
SYNTH_TASKS = [d[len("synth_"):] for d in DATASETS if d.startswith("synth_")]


wildcard_constraints:
    family="|".join(FAMILIES),
    dataset="|".join(DATASETS),
    seed=r"\d+",
    task="|".join(SYNTH_TASKS) if SYNTH_TASKS else "none",


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
