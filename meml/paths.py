"""Where every artifact of the workflow lives; the Snakefile and the CLI share these paths."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

SFT_METHODS = ("Expert0-SFT", "Expert1-SFT", "Expert2-SFT", "MoE-SFT")
RL_ALGORITHMS = ("GRPO", "Dr.GRPO", "DAPO")
MEML_METHOD = "MEML-GRPO"  # the full method; ablations add -ExpertK (no MoE), -noHSFT, -noIML


class MEMLVariant(NamedTuple):
    """Table 5's switches of a MEML-GRPO method name."""

    single_expert: int | None  # None: MoE on (MoE-SFT start, every expert); k: ExpertK-SFT start, expert k only
    hsft: bool  # hard-example buffer
    iml: bool  # inter-expert mutual learning

    @property
    def moe(self) -> bool:
        return self.single_expert is None

    @property
    def start(self) -> str:
        return "MoE-SFT" if self.moe else f"Expert{self.single_expert}-SFT"


def meml_variant(method: str) -> MEMLVariant | None:
    """``"MEML-GRPO-Expert1-noHSFT-noIML"`` -> ``MEMLVariant(1, False, False)``; None for other methods.

    Grammar: ``MEML-GRPO`` then, in this order and each optional, ``-Expert<k>`` (MoE off: start
    from ExpertK-SFT and sample under expert k only), ``-noHSFT`` (no hard-example buffer),
    ``-noIML`` (no mutual learning). Mutual learning needs two experts, so ``-Expert<k>`` requires
    ``-noIML``. A sweep tag (``+key=value``, :mod:`meml.sweeps`) is ignored. Errors name the method.
    """
    method = method.split("+", 1)[0]
    if method != MEML_METHOD and not method.startswith(MEML_METHOD + "-"):
        return None
    parts = method[len(MEML_METHOD):].split("-")[1:]
    single = None
    if parts and parts[0].startswith("Expert") and parts[0][6:].isdigit():
        single = int(parts.pop(0)[6:])
    hsft = iml = True
    if parts and parts[0] == "noHSFT":
        hsft = False
        parts.pop(0)
    if parts and parts[0] == "noIML":
        iml = False
        parts.pop(0)
    if parts:
        raise ValueError(f"unknown MEML method {method!r}: expected MEML-GRPO[-Expert<k>][-noHSFT][-noIML]")
    if single is not None and iml:
        raise ValueError(f"{method}: mutual learning (IML) needs several experts; a single-expert "
                         f"variant must end in -noIML")
    return MEMLVariant(single, hsft, iml)


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


def sft_dir(root, family: str, dataset: str, method: str, seed: int) -> Path:
    return Path(root) / "sft" / family / dataset / method / f"seed{seed}"


def rl_dir(root, family: str, dataset: str, method: str, seed: int) -> Path:
    """A finished RL run: model, tokenizer, ``metrics.jsonl`` (per-step log) and ``run.json``."""
    return Path(root) / "rl" / family / dataset / method / f"seed{seed}"


def rl_work_dir(root, family: str, dataset: str, method: str, seed: int) -> Path:
    """Checkpoints and the growing metrics log of an unfinished RL run (removed when it finishes)."""
    return Path(root) / "rl_work" / family / dataset / method / f"seed{seed}"


def rl_manifest(root, family: str, dataset: str, algorithm: str, seed: int) -> Path:
    """Written when every RL run of one (family, dataset, algorithm, seed) job has finished."""
    return Path(root) / "rl" / family / dataset / f"{algorithm}.seed{seed}.json"


def rl_algorithm(method: str) -> str | None:
    """``"MoE-SFT-DAPO"`` -> ``"DAPO"`` (a sweep tag ``+key=value`` is ignored); None for an SFT method."""
    method = method.split("+", 1)[0]
    for algorithm in RL_ALGORITHMS:
        if method.endswith("-SFT-" + algorithm):
            return algorithm
    return None


def model_dir(root, family: str, dataset: str, method: str, seed: int) -> Path:
    """The trained model of any method (SFT, RL or MEML-GRPO)."""
    if rl_algorithm(method) or meml_variant(method):
        return rl_dir(root, family, dataset, method, seed)
    return sft_dir(root, family, dataset, method, seed)


def eval_file(root, family: str, dataset: str, method: str, seed: int, expert: int) -> Path:
    """Result of one evaluation: (family, method, dataset, inference expert, seed)."""
    return Path(root) / "eval" / family / dataset / method / f"seed{seed}" / f"expert{expert}.json"


def samples_file(result_file: str | Path) -> Path:
    """Per-sample outputs beside a result file."""
    result_file = Path(result_file)
    return result_file.with_name(result_file.stem + ".samples.jsonl")


def method_experts(method: str, n_experts: int) -> tuple[int, ...]:
    """Inference experts a method is evaluated under: its own for ExpertX, all for multi-expert."""
    variant = meml_variant(method)
    if variant is not None:
        return tuple(range(n_experts)) if variant.moe else (variant.single_expert,)
    if method.startswith("Expert") and method[6:].split("-")[0].isdigit():
        return (int(method[6:].split("-")[0]),)
    return tuple(range(n_experts))


def sampled_file(root, family: str, dataset: str, method: str, seed: int, expert: int, summary: bool = False) -> Path:
    """Sampled completions of one model under inference expert ``expert`` (error-complementarity analysis).

    One JSON Lines row per test item; ``summary=True`` gives the JSON summary written beside it.
    """
    folder = Path(root) / "sampled" / family / dataset / method / f"seed{seed}"
    return folder / f"expert{expert}.{'json' if summary else 'jsonl'}"
