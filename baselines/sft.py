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

from meml.io import atomic_directory, write_json_atomic, write_jsonl_atomic
from meml.prompts import conversation

log = logging.getLogger(__name__)


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

    def __post_init__(self):
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("sft: steps and batch_size must be >= 1")
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


def train_sft(model_path: str | Path, rows: list[dict], run: SFTRunConfig, output_dir: str | Path,
              provenance: dict | None = None) -> dict:
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
    tokenizer = AutoTokenizer.from_pretrained(str(model_path))
    model = AutoModelForCausalLM.from_pretrained(str(model_path), dtype=torch.float32)
    dataset = Dataset.from_list(rows)
    output_dir = Path(output_dir)
    with atomic_directory(output_dir) as tmp:
        args = SFTConfig(
            output_dir=str(tmp / "trainer"),
            max_steps=run.steps,
            per_device_train_batch_size=run.batch_size,
            learning_rate=run.learning_rate,
            lr_scheduler_type=run.lr_scheduler_type,
            warmup_steps=int(round(run.warmup_ratio * run.steps)),
            max_length=run.max_length,
            assistant_only_loss=run.assistant_only_loss,
            logging_steps=run.logging_steps,
            save_strategy="no",
            report_to="none",
            seed=run.seed,
            data_seed=run.seed,
            bf16=False,
            use_cpu=True,
            activation_checkpointing=False,
            dataloader_num_workers=0,
            train_sampling_strategy="group_by_length" if run.group_by_length else "random",
            disable_tqdm=True,
        )
        trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
        result = trainer.train()
        trainer.model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        shutil.rmtree(tmp / "trainer", ignore_errors=True)
        history = trainer.state.log_history
        write_jsonl_atomic(tmp / "train_log.jsonl", history)
        losses = [h["loss"] for h in history if "loss" in h]
        metrics = {
            "train_rows": len(rows),
            "steps": trainer.state.global_step,
            "final_loss": losses[-1] if losses else None,
            "train_runtime_s": result.metrics.get("train_runtime"),
        }
        write_json_atomic(tmp / "run.json", {"settings": run.__dict__, "metrics": metrics, "start_model": str(model_path),
                                             **(provenance or {})})
    log.info("saved %s: %s", output_dir, json.dumps(metrics))
    return metrics
