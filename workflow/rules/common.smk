# Shared helpers for the rules: expected outputs, computed from the settings tree through meml.paths.
import re

from meml import paths
from meml.experts.teachers import TEACHER_KINDS, teacher_resources
from meml.methods import RL_ALGORITHMS, Method
from meml.pipeline import reads
from meml.sweeps import meml_groups, meml_methods, rl_algorithms, rl_methods
from reports.table6 import table6_methods

FAMILIES = SETTINGS.models.families
DATASETS = SETTINGS.datasets
SEEDS = SETTINGS.seeds
THREADS = SETTINGS.threads_per_job
METHODS = SETTINGS.sft.methods
RL_ALGORITHMS_USED = rl_algorithms(SETTINGS)
N_EXPERTS = SETTINGS.n_experts
TEACHER_EXPERTS = [k for k, s in enumerate(SETTINGS.experts.sources) if s["kind"] in TEACHER_KINDS]
MEML_METHODS = meml_methods(SETTINGS)  # every method once per sweep point (meml/sweeps.py)
MEML_GROUPS = meml_groups(SETTINGS)  # {riel job: its methods}: one job per sweep point (all methods without a sweep)
SWEEP = bool(SETTINGS.sweep)
TABLE6_METHODS = table6_methods(SETTINGS)
SYNTH_TASKS = SETTINGS.synthetic_tasks


wildcard_constraints:
    family="|".join(FAMILIES),
    dataset="|".join(DATASETS),
    seed=r"\d+",
    task="|".join(SYNTH_TASKS) if SYNTH_TASKS else "none",
    algorithm="|".join(re.escape(a) for a in RL_ALGORITHMS),
    meml_group="|".join(re.escape(g) for g in MEML_GROUPS) if MEML_GROUPS else "none",
    expert=r"\d+",


def world_files():
    return [str(paths.world_dir(RESULTS) / t / f"{s}.jsonl") for t in SYNTH_TASKS for s in SETTINGS.world.splits]


def dataset_inputs(dataset):
    """Files a dataset's loader reads (synthetic ones are made by the workflow)."""
    return world_files() if dataset.startswith("synth_") else []


def base_model_input(family):
    """The tiny base model's marker file, or nothing when a pretrained model is configured."""
    if SETTINGS.models.pretrained.get(family):
        return []
    return str(paths.base_model_dir(RESULTS, family) / "run.json")


def experts_of(method):
    return Method.parse(method).experts(N_EXPERTS)


def sft_manifest(family, dataset):
    return str(paths.sft_manifest(RESULTS, family, dataset))


def eval_outputs(family, dataset):
    """The SFT methods' evaluations of one (family, dataset): shared by every seed."""
    return [str(paths.eval_file(RESULTS, family, dataset, m, SETTINGS.sft.seed, e)) for m in METHODS
            for e in experts_of(m)]


def rl_methods_of(algorithm):
    return rl_methods(SETTINGS, algorithm)


def rl_manifest(family, dataset, algorithm, seed):
    return str(paths.rl_manifest(RESULTS, family, dataset, algorithm, seed))


def rl_eval_outputs(family, dataset, algorithm, seed):
    return [str(paths.eval_file(RESULTS, family, dataset, m, seed, e))
            for m in rl_methods_of(algorithm) for e in experts_of(m)]


def meml_manifest(family, dataset, group, seed):
    return str(paths.meml_manifest(RESULTS, family, dataset, group, seed))


def meml_manifests(family, dataset, seed):
    return [meml_manifest(family, dataset, g, seed) for g in MEML_GROUPS]


def meml_eval_outputs(family, dataset, seed):
    return [str(paths.eval_file(RESULTS, family, dataset, m, seed, e)) for m in MEML_METHODS for e in experts_of(m)]


def all_eval_outputs():
    """Every evaluation result the tables read: SFT, RL and MEML-GRPO methods."""
    out = [f for fam in FAMILIES for d in DATASETS for f in eval_outputs(fam, d)]
    out += [f for fam in FAMILIES for d in DATASETS for s in SEEDS for a in RL_ALGORITHMS_USED
            for f in rl_eval_outputs(fam, d, a, s)]
    out += [f for fam in FAMILIES for d in DATASETS for s in SEEDS for f in meml_eval_outputs(fam, d, s)]
    return out


def digest(reads_of):
    """A rule's `params: digest`: what its job reads (meml/pipeline/reads.py), per job."""
    return lambda wc: reads.digest(reads_of(wc))
