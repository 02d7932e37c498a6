"""Supervised fine-tuning through TRL's SFTTrainer: ExpertX-SFT, MoE-SFT (the paper's MEF stage)
and the tiny world's base pretraining.

- ExpertX-SFT: every training question with expert X's answer under expert X's system prompt.
- MoE-SFT (MEF): every question paired with every expert's answer under that expert's prompt,
  ``L_MEF = - sum_j sum_i log p(A_j^(i) | Q_j, P_i)``.
- Base pretraining (tiny world only): gold answers with no system prompt.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from baselines.rl import move_contents, save_model_collectively
from meml.io import atomic_directory, write_json_atomic, write_jsonl_atomic
from meml.prompts import conversation

log = logging.getLogger(__name__)

ANSWER_MASKS = ("chat_template", "prompt_completion")
"""How ``assistant_only_loss`` finds the answer tokens: from the chat template's ``{% generation %}`` markers
(TRL's ``assistant_only_loss``; the tiny models' template has them, and TRL patches a few known hub
templates), or by training on prompt/completion rows (TRL's ``completion_only_loss``), which works with
any chat template: the paper setting's hub models."""


@dataclass
class SFTRunConfig:
    """Settings of one SFT run (a subset of TRL's SFTConfig, chosen to be CPU-safe)."""

    steps: int = 100
    batch_size: int = 16
    learning_rate: float = 1e-3
    lr_scheduler_type: str = "cosine"
    warmup_ratio: float = 0.05
    max_length: int = 256
    assistant_only_loss: bool = True
    seed: int = 0
    threads: int = 1
    logging_steps: int = 10
    group_by_length: bool = False
    answer_mask: str = "chat_template"
    gradient_accumulation_steps: int = 1
    num_train_epochs: float | None = None

    def __post_init__(self):
        if self.steps < 1 or self.batch_size < 1 or self.gradient_accumulation_steps < 1:
            raise ValueError("sft: steps, batch_size and gradient_accumulation_steps must be >= 1")
        if self.answer_mask not in ANSWER_MASKS:
            raise ValueError(f"sft.answer_mask: expected one of {ANSWER_MASKS}, got {self.answer_mask!r}")
        if self.num_train_epochs is not None and self.num_train_epochs <= 0:
            raise ValueError(f"sft.epochs must be > 0, got {self.num_train_epochs}")
        if self.learning_rate <= 0:
            raise ValueError(f"sft: learning_rate must be > 0, got {self.learning_rate}")


def conversations(questions: Sequence[str], completions: Sequence[str | None], system: str | None) -> list[dict]:
    """``{"messages": [...]}`` rows for one expert; items without a completion are left out."""
    return [{"messages": conversation(q, c, system)} for q, c in zip(questions, completions) if c is not None]


def method_rows(method: str, questions: Sequence[str], trajectories: Sequence[Sequence[str | None]],
                prompts: Sequence[str]) -> list[dict]:
    """Training rows of an SFT method: ``ExpertX-SFT`` (expert X only) or ``MoE-SFT`` (every expert)."""
    if method == "MoE-SFT":
        experts = range(len(prompts))
    elif method.startswith("Expert") and method.endswith("-SFT"):
        experts = [int(method[len("Expert"):-len("-SFT")])]
    else:
        raise ValueError(f"unknown SFT method {method!r}: expected ExpertX-SFT or MoE-SFT")
    rows = []
    for expert in experts:
        if expert >= len(trajectories):
            raise ValueError(f"{method}: no trajectories for expert {expert}")
        rows.extend(conversations(questions, trajectories[expert], prompts[expert]))
    return rows


def prompt_completion_rows(rows: list[dict]) -> list[dict]:
    """``{"messages"}`` rows as conversational ``{"prompt", "completion"}`` rows (the last message is the answer)."""
    out = []
    for row in rows:
        messages = row["messages"]
        if not messages or messages[-1]["role"] != "assistant":
            raise ValueError(f"SFT row does not end with an assistant message: {messages!r}")
        out.append({"prompt": messages[:-1], "completion": messages[-1:]})
    return out


def train_sft(model_path: str | Path, rows: list[dict], run: SFTRunConfig, output_dir: str | Path,
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
    from meml.compute import ComputeConfig

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
        max_steps=-1 if run.num_train_epochs else run.steps,
        num_train_epochs=run.num_train_epochs or 1.0,
        per_device_train_batch_size=per_device,
        gradient_accumulation_steps=run.gradient_accumulation_steps,
        learning_rate=run.learning_rate,
        lr_scheduler_type=run.lr_scheduler_type,
        # steps: as many warm-up steps as before epochs existed (identical tiny runs); epochs: the ratio (a float < 1)
        warmup_steps=run.warmup_ratio if run.num_train_epochs else int(round(run.warmup_ratio * run.steps)),
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
        write_json_atomic(tmp / "run.json", {"settings": run.__dict__, "metrics": metrics, "start_model": str(model_path),
                                             **(provenance or {})})
    shutil.rmtree(args.output_dir, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    log.info("saved %s: %s", output_dir, json.dumps(metrics))
    return metrics
