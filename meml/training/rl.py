"""Train one RL run through a TRL ``GRPOTrainer``: the machinery every RL method shares (the baselines in
:mod:`baselines.rl`, MEML-GRPO in :mod:`meml.method.trainer`); each passes its own ``build`` function.

A run checkpoints every ``save_steps`` into its work folder; started again after a crash (or a
SIGKILL) it resumes from the last complete checkpoint and ends with the same number of steps.
The finished run appears atomically as a Hugging Face folder with ``metrics.jsonl`` (the per-step
log) and ``run.json``; the work folder is then removed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import shutil
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from meml.io import atomic_directory, write_json_atomic
from meml.training.rl_config import RLConfig

log = logging.getLogger(__name__)

CHECKPOINT_FILES = ("trainer_state.json", "optimizer.pt")
RNG_STATES = ("rng_state.pth", "rng_state_0.pth")  # one process; several (transformers writes one per process)


def last_checkpoint(trainer_dir: str | Path) -> Path | None:
    """The newest ``checkpoint-N`` folder that was written completely, or None."""
    trainer_dir = Path(trainer_dir)
    if not trainer_dir.is_dir():
        return None
    candidates = []
    for folder in trainer_dir.glob("checkpoint-*"):
        suffix = folder.name.split("-", 1)[1]
        if (suffix.isdigit() and all((folder / f).exists() for f in CHECKPOINT_FILES)
                and any((folder / f).exists() for f in RNG_STATES) and any(folder.glob("model*.safetensors"))):
            candidates.append((int(suffix), folder))
    return max(candidates)[1] if candidates else None


class _TiedOutputFilter(logging.Filter):
    """Drops transformers' resume warning about ``lm_head.weight`` missing from a checkpoint: with tied word
    embeddings the output layer IS the input embedding, which safetensors stores once, so nothing is missing."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("missing keys in the checkpoint model loaded" in message and "['lm_head.weight']" in message)


@contextlib.contextmanager
def tied_weights_quiet(model):
    """Silence the harmless tied-output warning on resume (only for models whose embeddings are tied)."""
    tied = bool(getattr(getattr(model, "config", None), "tie_word_embeddings", False))
    logger, quiet = logging.getLogger("transformers.trainer"), _TiedOutputFilter()
    if tied:
        logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


def _reward_functions(task: str, run: RLConfig) -> list:
    from trl.rewards import get_soft_overlong_punishment

    from meml.rewards import make_reward_function

    functions = [make_reward_function(task)]  # first: the accuracy reward every metric is computed from
    if run.overlong_buffer_length:
        functions.append(get_soft_overlong_punishment(run.max_completion_length, run.overlong_buffer_length))
    return functions


def trainer_kwargs(model_path: str | Path, rows: list[dict], task: str, run: RLConfig, trainer_dir: str | Path,
                   callbacks: Sequence = (), compute=None, reward_funcs=None) -> dict:
    """Seeded model, tokenizer, rewards, ``GRPOConfig`` and data: the arguments every RL trainer takes.

    ``reward_funcs`` replaces the task's rewards (accuracy first, then DAPO's overlong shaping when on)."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(run.threads)
    random.seed(run.seed)
    torch.manual_seed(run.seed)
    tokenizer = AutoTokenizer.from_pretrained(str(model_path), padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(str(model_path), dtype=torch.float32)
    args = run.grpo_config(trainer_dir, compute)
    return dict(model=model, reward_funcs=list(reward_funcs) if reward_funcs is not None else _reward_functions(task, run),
                args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                callbacks=list(callbacks), **fast_path_kwargs(run, model, args, compute))


def fast_path_kwargs(run: RLConfig, model, args, compute=None) -> dict:
    """The trainer arguments of ``run.decoder`` and ``run.shared_prompt_logprobs`` for ``model``
    (:mod:`meml.training.fast_paths`): TRL's ``rollout_func`` and the trainer's ``shared_prompt_logprobs``."""
    from meml.training.fast_paths import (
        auto_obstacle,
        resolve_decoder,
        rollout_function,
    )

    decoder = resolve_decoder(run.decoder, model, args, compute)
    shared = run.shared_prompt_logprobs and auto_obstacle(model, args, compute) is None
    rollout = None if decoder == "trl" else rollout_function(exact=decoder == "exact")
    return {"rollout_func": rollout, "shared_prompt_logprobs": shared}


def train_rl(model_path: str | Path, rows: list[dict], task: str, run: RLConfig, output_dir: str | Path,
             work_dir: str | Path, build, provenance: dict | None = None, extra_settings: dict | None = None,
             compute=None) -> dict:
    """Train ``model_path`` with ``run`` on ``rows`` and save the result at ``output_dir``.

    ``work_dir`` keeps checkpoints and the growing metrics log; an existing complete checkpoint
    there is resumed from through ``trainer.train(resume_from_checkpoint=...)``, which also restores each
    process's extra trainer state (DAPO's refill sampler, MEML-GRPO's buffer) through TRL's checkpoint hooks
    (:class:`meml.training.grpo.SparsityGRPOTrainer`).
    It is deleted once ``output_dir`` has been written. ``build`` makes the trainer (the baselines'
    :func:`baselines.rl.build_trainer`, or MEML-GRPO's :func:`meml.method.trainer.trainer_builder`), ``extra_settings`` are recorded in ``run.json``, ``compute``
    (:class:`meml.training.compute.ComputeConfig`, default one CPU process) says where it runs.
    """
    from meml.training.rl_log import REQUIRED, StepLogCallback, read_log

    if not rows:
        raise ValueError(f"no RL rows for {output_dir}")
    run = run.for_rows(len(rows))
    work_dir, output_dir = Path(work_dir), Path(output_dir)
    trainer_dir = work_dir / "trainer"
    checkpoint = last_checkpoint(trainer_dir)
    resume_step = 0
    if checkpoint is not None:
        resume_step = json.loads((checkpoint / "trainer_state.json").read_text())["global_step"]
        log.info("resuming %s from %s (step %d of %d)", output_dir, checkpoint, resume_step, run.steps)
    callbacks = [StepLogCallback(work_dir / "metrics.jsonl", resume_step)]
    if run.tensorboard:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:
            raise ImportError("rl.tensorboard is true but the tensorboard package is missing: "
                              "pip install 'meml-grpo[tensorboard]'") from err
        from transformers.integrations import TensorBoardCallback

        callbacks.append(TensorBoardCallback(SummaryWriter(log_dir=str(work_dir / "tensorboard"))))
    trainer = build(model_path, rows, task, run, trainer_dir, callbacks, compute=compute)
    with tied_weights_quiet(trainer.model):
        result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    saved = save_model_collectively(trainer, output_dir)
    if not trainer.accelerator.is_main_process:  # other ranks of a multi-GPU launch: rank 0 writes the run
        trainer.accelerator.wait_for_everyone()
        return {}
    history = read_log(work_dir / "metrics.jsonl")
    missing = [k for k in REQUIRED if history and k not in history[-1]]
    if missing:
        raise RuntimeError(f"{output_dir}: metrics log rows lack {missing}")
    with atomic_directory(output_dir) as tmp:
        move_contents(saved, tmp)
        shutil.copyfile(work_dir / "metrics.jsonl", tmp / "metrics.jsonl")
        if run.tensorboard:
            shutil.copytree(work_dir / "tensorboard", tmp / "tensorboard")
        metrics = {
            "rows": len(rows),
            "steps": trainer.state.global_step,
            "resumed_from_step": resume_step,
            "num_processes": trainer.accelerator.num_processes,
            "train_runtime_s": result.metrics.get("train_runtime"),
            "first": {k: history[0].get(k) for k in ("accuracy", "frac_all_zero")} if history else None,
            "last": {k: history[-1].get(k) for k in ("accuracy", "frac_all_zero")} if history else None,
        }
        settings = {**asdict(run), **(extra_settings or {})}
        write_json_atomic(tmp / "run.json", {"settings": settings, "metrics": metrics,
                                             "start_model": str(model_path), **(provenance or {})})
    shutil.rmtree(work_dir, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    log.info("saved %s: %s", output_dir, json.dumps(metrics))
    return metrics


def save_model_collectively(trainer, output_dir: str | Path) -> Path:
    """Save the trained model and tokenizer into a staging folder beside ``output_dir``; return it.

    Every process calls it (DeepSpeed and FSDP gather the weights collectively); rank 0 writes. The
    staging folder becomes the result only through :func:`meml.io.atomic_directory`.
    """
    output_dir = Path(output_dir)
    staging = output_dir.parent / f".{output_dir.name}.saving"
    if trainer.accelerator.is_main_process:
        shutil.rmtree(staging, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    trainer.save_model(str(staging))
    trainer.accelerator.wait_for_everyone()
    return staging


def move_contents(source: Path, target: Path) -> None:
    """Move every file of ``source`` except the Trainer's pickled arguments into ``target``; remove ``source``."""
    for item in source.iterdir():
        if item.name != "training_args.bin":
            shutil.move(str(item), str(target / item.name))
    shutil.rmtree(source, ignore_errors=True)
