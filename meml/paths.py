"""Where every artifact of the workflow lives; the Snakefile and the CLI share these paths."""

from __future__ import annotations

from pathlib import Path

from meml.methods import Method


def world_dir(root: str | Path) -> Path:
    """Synthetic benchmark files, one folder per task in the original schemas."""
    return Path(root) / "data" / "synth"


def experts_file(root, dataset: str, expert: int) -> Path:
    """Expert ``expert``'s trajectories for the training pool of ``dataset``."""
    return Path(root) / "experts" / dataset / f"expert{expert}.jsonl"


def teacher_file(root, dataset: str, expert: int) -> Path:
    """Answer cache of expert ``expert``'s teacher LLM on the training pool of ``dataset`` (``meml teacher``)."""
    return Path(root) / "teachers" / dataset / f"expert{expert}.jsonl"


def teacher_summary_file(root, dataset: str, expert: int) -> Path:
    """Written once every question is in the teacher cache: the workflow's marker of a finished teacher job
    (the cache itself is never a job output, so a failed job cannot make Snakemake delete it)."""
    return Path(root) / "teachers" / dataset / f"expert{expert}.summary.json"


def init_model_dir(root, family: str) -> Path:
    """Tokenizer plus randomly initialised tiny model of ``family``."""
    return Path(root) / "models" / family / "init"


def base_model_dir(root, family: str) -> Path:
    """The base model every method starts from (pretrained tiny model, or a hub id)."""
    return Path(root) / "models" / family / "base"


SHARED = "shared"  # the folder of an SFT method's evaluations and samples: every seed shares one SFT run


def run_folder(method: str, seed: int) -> str:
    """``seed<N>``; ``shared`` for an SFT method, whose one run per (family, dataset) every seed shares (the seeds
    are RL replicates, ``sft.seed`` is the SFT's own)."""
    return SHARED if Method.parse(method).kind == "sft" else f"seed{seed}"


def sft_dir(root, family: str, dataset: str, method: str) -> Path:
    """An SFT run, one per (family, dataset, method), shared by every seed."""
    return Path(root) / "sft" / family / dataset / method


def rl_dir(root, family: str, dataset: str, method: str, seed: int) -> Path:
    """A finished RL run: model, tokenizer, ``metrics.jsonl`` (per-step log) and ``run.json``."""
    return Path(root) / "rl" / family / dataset / method / f"seed{seed}"


def rl_work_dir(root, family: str, dataset: str, method: str, seed: int) -> Path:
    """Checkpoints and the growing metrics log of an unfinished RL run (removed when it finishes)."""
    return Path(root) / "rl_work" / family / dataset / method / f"seed{seed}"


def sft_manifest(root, family: str, dataset: str) -> Path:
    """Written when every SFT run of one (family, dataset) job has finished (the sft rule's output: Snakemake
    removes a job's outputs before it runs, so the run folders themselves are not outputs and survive a rerun)."""
    return Path(root) / "sft" / family / f"{dataset}.json"


def meml_manifest(root, family: str, dataset: str, group: str, seed: int) -> Path:
    """Written when every MEML-GRPO run of one riel job (``group``: ``MEML-GRPO`` plus a sweep point's tags,
    :func:`meml.sweeps.meml_group`) has finished; the riel rule's output, outside the run folders."""
    return Path(root) / "rl" / family / dataset / f"{group}.seed{seed}.json"


def world_check_file(root, family: str, dataset: str) -> Path:
    """The world check of one (family, synthetic dataset): every SFT model under every expert prompt, per slice."""
    return Path(root) / "world_check" / family / f"{dataset}.json"


def rl_manifest(root, family: str, dataset: str, algorithm: str, seed: int) -> Path:
    """Written when every RL run of one (family, dataset, algorithm, seed) job has finished."""
    return Path(root) / "rl" / family / dataset / f"{algorithm}.seed{seed}.json"


def model_dir(root, family: str, dataset: str, method: str, seed: int) -> Path:
    """The trained model of any method (SFT, RL or MEML-GRPO); every seed shares an SFT method's."""
    if Method.parse(method).trains_rl:
        return rl_dir(root, family, dataset, method, seed)
    return sft_dir(root, family, dataset, method)


def eval_file(root, family: str, dataset: str, method: str, seed: int, expert: int) -> Path:
    """Result of one evaluation: (family, method, dataset, inference expert, seed); an SFT method's is shared by
    every seed (:func:`run_folder`)."""
    return Path(root) / "eval" / family / dataset / method / run_folder(method, seed) / f"expert{expert}.json"


def samples_file(result_file: str | Path) -> Path:
    """Per-sample outputs beside a result file."""
    result_file = Path(result_file)
    return result_file.with_name(result_file.stem + ".samples.jsonl")


def sampled_file(root, family: str, dataset: str, method: str, seed: int, expert: int, summary: bool = False) -> Path:
    """Sampled completions of one model under inference expert ``expert`` (error-complementarity analysis).

    One JSON Lines row per test item; ``summary=True`` gives the JSON summary written beside it.
    """
    folder = Path(root) / "sampled" / family / dataset / method / run_folder(method, seed)
    return folder / f"expert{expert}.{'json' if summary else 'jsonl'}"
