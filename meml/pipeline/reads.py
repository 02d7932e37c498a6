"""The one rerun rule: a job reruns when what it reads changes.

One function per stage names the settings a run or job reads. A rule's ``params: digest`` is the
digest of its job's reads (so Snakemake reruns the job when they change, and only then), and a
training stage keeps an already-finished run whose recorded identity (its reads plus its start
model) is unchanged, so a job rerun for another reason (a method added beside it) retrains nothing
it already has. Evaluation-only settings (``eval``, ``data.test_split``, ``data.max_test_items``,
``reports``, ``complementarity``) appear in no training stage's reads.
"""

from __future__ import annotations

from dataclasses import asdict, replace

from meml.methods import Method
from meml.pipeline.settings import Settings, config_digest
from meml.sweeps import apply_point


def _data(settings: Settings, dataset: str, split_key: str, cap_key: str | None) -> dict:
    """The split a stage reads and its ``data`` cap (``cap_key`` None: the stage has its own cap)."""
    data = settings.data
    source = "synthetic world" if dataset.startswith("synth_") else data.data_dir
    return {"dataset": dataset, "split": getattr(data, split_key)[dataset],
            "cap": getattr(data, cap_key) if cap_key else None, "source": source}


def _prompts(settings: Settings, experts) -> list[str]:
    return [settings.experts.prompts[e] for e in experts]


def world_reads(settings: Settings) -> dict:
    return {"world": asdict(settings.world), "tasks": settings.synthetic_tasks}


def experts_reads(settings: Settings, dataset: str) -> dict:
    return {"experts": asdict(settings.experts), "data": _data(settings, dataset, "train_split", "max_train_items"),
            "world_seed": settings.world.seed}


def teacher_reads(settings: Settings, dataset: str, expert: int) -> dict:
    return {"source": settings.experts.sources[expert], "data": _data(settings, dataset, "train_split",
                                                                       "max_train_items")}


def tiny_reads(settings: Settings, family: str) -> dict:
    return {"tiny": asdict(settings.models.tiny_for(family)), "seed": settings.models.pretrain_for(family).seed,
            "prompts": settings.experts.prompts, "datasets": settings.datasets,
            "data": [_data(settings, d, "train_split", "max_train_items") for d in settings.datasets]}


def pretrain_reads(settings: Settings, family: str) -> dict:
    return {"pretrain": asdict(settings.models.pretrain_for(family)), "difficulty": asdict(settings.world.difficulty),
            "threads": settings.threads_per_job}


def sft_run(settings: Settings):
    """The :class:`~meml.training.sft.SFTConfig` of an SFT run (the ``sft`` section without its method list; its
    seed is ``sft.seed``, shared by every RL seed)."""
    from meml.training.sft import SFTConfig

    fields = {k: getattr(settings.sft, k) for k in SFTConfig.__dataclass_fields__}
    return SFTConfig(**{**fields, "threads": settings.threads_per_job})


def sft_reads(settings: Settings, family: str, dataset: str, method: str) -> dict:
    parsed = Method.parse(method)
    return {"method": method, "base": settings.models.pretrained.get(family) or "tiny",
            "run": asdict(sft_run(settings)),
            "prompts": _prompts(settings, parsed.experts(settings.n_experts)),
            "experts": [settings.experts.sources[e] for e in parsed.experts(settings.n_experts)],
            "filter_incorrect": settings.experts.filter_incorrect,
            "data": _data(settings, dataset, "train_split", "max_train_items")}


def rl_run(settings: Settings, method: str, seed: int):
    """The resolved :class:`~meml.training.rl_config.RLConfig` of an RL baseline run at its sweep point."""
    parsed = Method.parse(method)
    if parsed.kind != "rl":
        raise ValueError(f"{method} is not an RL baseline method")
    return apply_point(settings, parsed).rl.run(parsed.algorithm, seed, settings.threads_per_job)


def meml_run(settings: Settings, method: str, seed: int):
    """``(MEMLConfig, GRPO RLConfig)`` of a MEML-GRPO run at its sweep point."""
    parsed = Method.parse(method)
    if parsed.kind != "meml":
        raise ValueError(f"{method} is not a MEML-GRPO method")
    at = apply_point(settings, parsed)
    meml = at.meml.for_method(parsed)
    if meml.buffer_learning_rate is None:  # the 'separate' buffer step's rate: an SFT-like one
        meml = replace(meml, buffer_learning_rate=at.sft.learning_rate)
    return meml, meml.grpo_run(at.rl.run("GRPO", seed, settings.threads_per_job), settings.n_experts)


def rl_reads(settings: Settings, dataset: str, method: str, seed: int) -> dict:
    """What one RL or MEML-GRPO run reads (besides its start model)."""
    parsed = Method.parse(method)
    reads = {"method": method, "data": _data(settings, dataset, "rl_split", "max_rl_items")}
    if parsed.kind == "meml":
        meml, run = meml_run(settings, method, seed)
        reads.update(run=asdict(run), meml=asdict(meml), prompts=_prompts(settings, meml.experts(settings.n_experts)))
    else:
        reads.update(run=asdict(rl_run(settings, method, seed)),
                     prompts=_prompts(settings, parsed.experts(settings.n_experts)))
    return reads


def eval_reads(settings: Settings, dataset: str, methods: list[str]) -> dict:
    return {"eval": asdict(settings.eval), "data": _data(settings, dataset, "test_split", "max_test_items"),
            "prompts": settings.experts.prompts, "methods": methods}


def world_check_reads(settings: Settings, dataset: str) -> dict:
    return {"world_check": asdict(settings.world_check), "data": _data(settings, dataset, "dev_split", None),
            "eval": asdict(settings.eval), "prompts": settings.experts.prompts, "sources": settings.experts.sources,
            "methods": settings.sft.methods}


def sample_reads(settings: Settings, dataset: str) -> dict:
    return {"complementarity": asdict(settings.complementarity), "experts": settings.complementarity_experts(),
            **eval_reads(settings, dataset, [])}


def digest(reads) -> str:
    """The digest a rule's ``params`` hold."""
    return config_digest(reads)


def run_identity(reads: dict, start_marker: str, record_ids: list[str]) -> str:
    """The identity a finished run records: what it read, its start model's marker and its items."""
    return config_digest(reads, start_marker, record_ids)
