"""Supervised fine-tuning through TRL's SFTTrainer: the machinery of ExpertX-SFT, MoE-SFT (the paper's MEF
stage) and the tiny world's base pretraining.

The rows of each SFT method are built in :mod:`baselines.sft`; base pretraining (tiny world only)
trains on gold answers with no system prompt (:mod:`meml.pipeline.stages`).
"""

from __future__ import annotations

import json
import logging
import random
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from meml.fields import check_fields, setting
from meml.io import atomic_directory, write_json_atomic, write_jsonl_atomic
from meml.prompts import conversation
from meml.training.rl import move_contents, save_model_collectively

log = logging.getLogger(__name__)

@dataclass
class SFTConfig:
    """One SFT run (a subset of TRL's ``SFTConfig``, chosen to be CPU-safe)."""

    steps: int = setting("Optimizer steps (ignored when `epochs` is set).", 150, ge=1)
    batch_size: int = setting("Global batch size (rows per optimizer step).", 16, ge=1)
    learning_rate: float = setting("Peak learning rate (AdamW).", 1e-3, gt=0)
    lr_scheduler_type: str = setting("transformers scheduler name.", "cosine")
    warmup_ratio: float = setting("Share of the steps spent warming up.", 0.05, ge=0, le=1)
    max_length: int = setting("Maximum tokens of a training row.", 256, ge=1)
    assistant_only_loss: bool = setting("Train on the answer tokens only.", True)
    answer_mask: Literal["chat_template", "prompt_completion"] = setting(
        "How assistant_only_loss finds the answer: the chat template's generation markers (the tiny models' "
        "template has them) or prompt/completion rows (any chat template: hub models).", "chat_template")
    gradient_accumulation_steps: int = setting("Micro-batches per optimizer step (batch_size is the global batch).",
                                               1, ge=1)
    epochs: float | None = setting("Train this many epochs instead of `steps` (the paper: 1).", None, gt=0)
    seed: int = setting("Seed of data order and initialisation (the workflow's seed).", 0, setting=False, ge=0)
    threads: int = setting("torch CPU threads (the workflow's threads_per_job).", 1, setting=False, ge=1)
    logging_steps: int = setting("Log the loss every this many steps.", 10, setting=False, ge=1)
    group_by_length: bool = setting("Batch rows of similar length together.", False, setting=False)

    def __post_init__(self):
        check_fields(self, "sft")


def conversations(questions: Sequence[str], completions: Sequence[str | None], system: str | None) -> list[dict]:
    """``{"messages": [...]}`` rows for one expert; items without a completion are left out."""
    return [{"messages": conversation(q, c, system)} for q, c in zip(questions, completions) if c is not None]


def prompt_completion_rows(rows: list[dict]) -> list[dict]:
    """``{"messages"}`` rows as conversational ``{"prompt", "completion"}`` rows (the last message is the answer)."""
    out = []
    for row in rows:
        messages = row["messages"]
        if not messages or messages[-1]["role"] != "assistant":
            raise ValueError(f"SFT row does not end with an assistant message: {messages!r}")
        out.append({"prompt": messages[:-1], "completion": messages[-1:]})
    return out


def train_sft(model_path: str | Path, rows: list[dict], run: SFTConfig, output_dir: str | Path,
              provenance: dict | None = None, compute=None) -> dict:
    """Fine-tune ``model_path`` on chat ``rows`` and save a Hugging Face folder at ``output_dir``.

    The folder appears atomically; it holds the model, the tokenizer, ``train_log.jsonl`` (TRL's
    log history) and ``run.json`` (settings, provenance, final metrics).
    """
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    if not rows:
        raise ValueError(f"no training rows for {output_dir}")
    torch.set_num_threads(run.threads)
    random.seed(run.seed)
    torch.manual_seed(run.seed)
    from meml.training.compute import ComputeConfig

    compute = compute or ComputeConfig()
    tokenizer = AutoTokenizer.from_pretrained(str(model_path))
    model = AutoModelForCausalLM.from_pretrained(str(model_path), dtype=torch.float32)
    by_completion = run.assistant_only_loss and run.answer_mask == "prompt_completion"
    dataset = Dataset.from_list(prompt_completion_rows(rows) if by_completion else rows)
    per_device = run.batch_size // (compute.num_processes * run.gradient_accumulation_steps)
    if per_device < 1 or per_device * compute.num_processes * run.gradient_accumulation_steps != run.batch_size:
        raise ValueError(f"sft.batch_size {run.batch_size} does not split over {compute.num_processes} process(es) x "
                         f"gradient_accumulation_steps {run.gradient_accumulation_steps}")
    output_dir = Path(output_dir)
    args = SFTConfig(
        output_dir=str(output_dir.parent / f".{output_dir.name}.trainer"),  # nothing is saved there
        max_steps=-1 if run.epochs else run.steps,
        num_train_epochs=run.epochs or 1.0,
        per_device_train_batch_size=per_device,
        gradient_accumulation_steps=run.gradient_accumulation_steps,
        learning_rate=run.learning_rate,
        lr_scheduler_type=run.lr_scheduler_type,
        # steps: as many warm-up steps as before epochs existed (identical tiny runs); epochs: the ratio (a float < 1)
        warmup_steps=run.warmup_ratio if run.epochs else int(round(run.warmup_ratio * run.steps)),
        max_length=run.max_length,
        assistant_only_loss=run.assistant_only_loss and not by_completion,
        completion_only_loss=by_completion,
        logging_steps=run.logging_steps,
        save_strategy="no",
        report_to="none",
        seed=run.seed,
        data_seed=run.seed,
        dataloader_num_workers=0,
        **compute.trainer_args(),
        train_sampling_strategy="group_by_length" if run.group_by_length else "random",
        disable_tqdm=True,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    result = trainer.train()
    saved = save_model_collectively(trainer, output_dir)
    if not trainer.accelerator.is_main_process:  # other ranks of a multi-GPU launch: rank 0 writes the run
        trainer.accelerator.wait_for_everyone()
        return {}
    history = trainer.state.log_history
    losses = [h["loss"] for h in history if "loss" in h]
    metrics = {
        "train_rows": len(rows),
        "steps": trainer.state.global_step,
        "final_loss": losses[-1] if losses else None,
        "num_processes": trainer.accelerator.num_processes,
        "train_runtime_s": result.metrics.get("train_runtime"),
    }
    with atomic_directory(output_dir) as tmp:
        move_contents(saved, tmp)
        write_jsonl_atomic(tmp / "train_log.jsonl", history)
        write_json_atomic(tmp / "run.json", {"settings": asdict(run), "metrics": metrics, "start_model": str(model_path),
                                             **(provenance or {})})
    shutil.rmtree(args.output_dir, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    log.info("saved %s: %s", output_dir, json.dumps(metrics))
    return metrics
