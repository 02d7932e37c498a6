"""Where and how jobs run: device, precision, vLLM, launcher and Snakemake resources.

One :class:`ComputeConfig` is the workflow config's ``compute`` section. The tiny setting
keeps the defaults (CPU, fp32, plain ``python -m meml``, no GPU resource); the paper setting turns
on CUDA, bf16, vLLM rollouts and evaluation, and ``accelerate launch`` for multi-GPU training.
These choices change speed and memory, not the algorithm, so they are recorded in every result
file (through the config) but are not part of a run's identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from meml.fields import check_fields, setting


@dataclass(frozen=True)
class VLLMConfig:
    """TRL's vLLM integration for RL rollouts."""

    rollouts: bool = setting("Generate RL rollouts with vLLM through TRL (`use_vllm`).", False)
    mode: Literal["colocate", "server"] = setting(
        "colocate (vLLM shares the training GPUs) or server (a separate `trl vllm-serve`).", "colocate")
    server_base_url: str | None = setting("URL of the `trl vllm-serve` server in server mode.", None)
    gpu_memory_utilization: float = setting("Share of GPU memory vLLM may take (colocate: keep room for "
                                            "training).", 0.3, gt=0, le=1)
    tensor_parallel_size: int = setting("vLLM tensor parallel size (colocate mode).", 1, ge=1)

    def __post_init__(self):
        check_fields(self, "compute.vllm")


@dataclass(frozen=True)
class ComputeConfig:
    """Hardware settings of the training, evaluation and sampling jobs."""

    device: Literal["cpu", "cuda"] = setting("cpu or cuda.", "cpu")
    precision: Literal["fp32", "bf16"] = setting(
        "fp32, or bf16 (mixed precision training, bf16 weights for evaluation); bf16 needs cuda.", "fp32")
    gradient_checkpointing: bool = setting("Recompute activations in the backward pass (saves GPU memory; 1.5-2x "
                                           "slower on small CPU models).", False)
    launcher: Literal["python", "accelerate"] = setting(
        "python (one process) or accelerate (`accelerate launch` with `accelerate_config`: DDP, DeepSpeed ZeRO or "
        "FSDP across `num_processes` GPUs).", "python")
    accelerate_config: str | None = setting("accelerate config file (workflow/accelerate/*.yaml) for launcher "
                                            "accelerate.", None)
    num_processes: int = setting("Training processes (GPUs) per job under accelerate.", 1, ge=1)
    group_meml_runs: bool = setting(
        "Train the MEML-GRPO methods (Table 5 rows) of one (family, dataset, seed, sweep point) in one job, one "
        "process paying the imports once; false: one job per method (long GPU runs, Slurm time limits).", True)
    vllm: VLLMConfig = setting("vLLM rollouts (TRL's integration).", factory=VLLMConfig)
    eval_backend: Literal["hf", "vllm"] = setting("lm-eval backend of evaluation and sampling: hf or vllm.", "hf")
    eval_gpu_memory_utilization: float = setting("Share of each GPU the vLLM evaluation backend may take (weights and "
                                                 "KV cache).", 0.8, gt=0, le=1)
    eval_max_model_len: int | None = setting(
        "Longest prompt plus answer the vLLM evaluation backend sizes its KV cache for; null: the model's own "
        "(Llama-3.2-1B: 131,072 tokens, a cache far larger than any benchmark answer needs).", 8192, ge=1)
    gpus_per_job: int = setting("GPUs a training job declares to Snakemake (`resources: gpu`).", 0, ge=0)
    gpus_per_eval_job: int = setting("GPUs an evaluation or sampling job declares; the vLLM backend uses them all "
                                     "(data parallel replicas of `vllm.tensor_parallel_size` GPUs).", 0, ge=0)
    mem_mb_per_job: int = setting("Host memory a job declares to Snakemake (`resources: mem_mb`).", 4000, ge=1)
    runtime_min_per_job: int = setting(
        "Wall-clock limit a training or teacher job declares (`resources: runtime`, minutes; Slurm uses it). Keep it "
        "within your partition's limit: a run killed at the limit resumes from its last checkpoint on a retry.",
        120, ge=1)
    runtime_min_per_eval_job: int = setting("Wall-clock limit an evaluation, sampling or world-check job declares "
                                            "(minutes).", 120, ge=1)

    def __post_init__(self):
        check_fields(self, "compute")
        if self.precision == "bf16" and self.device != "cuda":
            raise ValueError("compute.precision bf16 needs compute.device cuda (CPU runs train in fp32)")
        if self.vllm.rollouts and self.device != "cuda":
            raise ValueError("compute.vllm.rollouts needs compute.device cuda")
        if self.eval_backend == "vllm" and self.device != "cuda":
            raise ValueError("compute.eval_backend vllm needs compute.device cuda")
        if self.vllm.rollouts and self.vllm.mode == "server" and not self.vllm.server_base_url:
            raise ValueError("compute.vllm.mode server needs compute.vllm.server_base_url (the `trl vllm-serve` URL)")
        if self.launcher == "accelerate" and not self.accelerate_config:
            raise ValueError("compute.launcher accelerate needs compute.accelerate_config (a file under "
                             "workflow/accelerate/)")
        if self.num_processes > 1 and self.launcher != "accelerate":
            raise ValueError("compute.num_processes > 1 needs compute.launcher accelerate")

    @property
    def bf16(self) -> bool:
        return self.precision == "bf16"

    def eval_dtype(self) -> str:
        return "bfloat16" if self.bf16 else "float32"

    def trainer_args(self) -> dict:
        """Keyword arguments of TRL's ``SFTConfig`` and ``GRPOConfig`` for this hardware."""
        from meml.training.trl_compat import checkpointing_field

        return {"use_cpu": self.device == "cpu", "bf16": self.bf16, checkpointing_field(): self.gradient_checkpointing}

    def grpo_args(self) -> dict:
        """Extra ``GRPOConfig`` arguments: TRL's vLLM integration when ``vllm_rollouts``."""
        if not self.vllm.rollouts:
            return {"use_vllm": False}
        args = {"use_vllm": True, "vllm_mode": self.vllm.mode}
        if self.vllm.mode == "colocate":
            args.update(vllm_gpu_memory_utilization=self.vllm.gpu_memory_utilization,
                        vllm_tensor_parallel_size=self.vllm.tensor_parallel_size)
        else:
            args.update(vllm_server_base_url=self.vllm.server_base_url)
        return args

    def launch_command(self, python: str) -> str:
        """Shell prefix that runs ``meml`` for a training job: ``python -m meml`` or ``accelerate launch``."""
        if self.launcher == "python":
            return f'"{python}" -m meml'
        config_file = Path(self.accelerate_config)
        return (f'"{python}" -m accelerate.commands.launch --config_file "{config_file}" '
                f"--num_processes {self.num_processes} -m meml")
