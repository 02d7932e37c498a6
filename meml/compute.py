"""Where and how jobs run: device, precision, vLLM, launcher and Snakemake resources.

One :class:`ComputeConfig` comes from the workflow config's ``compute`` section. The tiny setting
keeps the defaults (CPU, fp32, plain ``python -m meml``, no GPU resource); the paper setting turns
on CUDA, bf16, vLLM rollouts and evaluation, and ``accelerate launch`` for multi-GPU training.
These choices change speed and memory, not the algorithm, so they are recorded in every result
file (through the config) but are not part of a run's identity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEVICES = ("cpu", "cuda")
PRECISIONS = ("fp32", "bf16")
LAUNCHERS = ("python", "accelerate")
VLLM_MODES = ("colocate", "server")
EVAL_BACKENDS = ("hf", "vllm")


def _help(text: str, default=None, **kwargs):
    return field(default=default, metadata={"help": text}, **kwargs)


@dataclass(frozen=True)
class ComputeConfig:
    """Hardware settings of the training, evaluation and sampling jobs."""

    device: str = _help("cpu or cuda.", "cpu")
    precision: str = _help("fp32, or bf16 (mixed precision training, bf16 weights for evaluation); bf16 needs cuda.",
                           "fp32")
    gradient_checkpointing: bool = _help("Recompute activations in the backward pass (saves GPU memory; 1.5-2x "
                                         "slower on small CPU models).", False)
    launcher: str = _help("python (one process) or accelerate (`accelerate launch` with `accelerate_config`: DDP, "
                          "DeepSpeed ZeRO or FSDP across `num_processes` GPUs).", "python")
    accelerate_config: str | None = _help("accelerate config file (workflow/accelerate/*.yaml) for launcher "
                                          "accelerate.", None)
    num_processes: int = _help("Training processes (GPUs) per job under accelerate.", 1)
    vllm_rollouts: bool = _help("Generate RL rollouts with vLLM through TRL (`use_vllm`).", False)
    vllm_mode: str = _help("colocate (vLLM shares the training GPUs) or server (a separate `trl vllm-serve`).",
                           "colocate")
    vllm_server_base_url: str | None = _help("URL of the `trl vllm-serve` server in server mode.", None)
    vllm_gpu_memory_utilization: float = _help("Share of GPU memory vLLM may take (colocate: keep room for "
                                               "training).", 0.3)
    vllm_tensor_parallel_size: int = _help("vLLM tensor parallel size (colocate mode).", 1)
    eval_backend: str = _help("lm-eval backend of evaluation and sampling: hf or vllm.", "hf")
    gpus_per_job: int = _help("GPUs a training job declares to Snakemake (`resources: gpu`).", 0)
    gpus_per_eval_job: int = _help("GPUs an evaluation or sampling job declares; the vLLM backend uses them all "
                                   "(data parallel replicas of `vllm_tensor_parallel_size` GPUs).", 0)
    mem_mb_per_job: int = _help("Host memory a job declares to Snakemake (`resources: mem_mb`).", 4000)
    runtime_min_per_job: int = _help("Wall-clock limit a job declares (`resources: runtime`, minutes; Slurm "
                                     "uses it).", 120)

    def __post_init__(self):
        checks = (("device", DEVICES), ("precision", PRECISIONS), ("launcher", LAUNCHERS),
                  ("vllm_mode", VLLM_MODES), ("eval_backend", EVAL_BACKENDS))
        for name, allowed in checks:
            if getattr(self, name) not in allowed:
                raise ValueError(f"compute.{name}: expected one of {allowed}, got {getattr(self, name)!r}")
        if self.precision == "bf16" and self.device != "cuda":
            raise ValueError("compute.precision bf16 needs compute.device cuda (CPU runs train in fp32)")
        if self.vllm_rollouts and self.device != "cuda":
            raise ValueError("compute.vllm_rollouts needs compute.device cuda")
        if self.eval_backend == "vllm" and self.device != "cuda":
            raise ValueError("compute.eval_backend vllm needs compute.device cuda")
        if self.vllm_rollouts and self.vllm_mode == "server" and not self.vllm_server_base_url:
            raise ValueError("compute.vllm_mode server needs compute.vllm_server_base_url (the `trl vllm-serve` URL)")
        if self.launcher == "accelerate" and not self.accelerate_config:
            raise ValueError("compute.launcher accelerate needs compute.accelerate_config (a file under "
                             "workflow/accelerate/)")
        if self.num_processes < 1:
            raise ValueError(f"compute.num_processes must be >= 1, got {self.num_processes}")
        if self.num_processes > 1 and self.launcher != "accelerate":
            raise ValueError("compute.num_processes > 1 needs compute.launcher accelerate")
        if not 0 < self.vllm_gpu_memory_utilization <= 1:
            raise ValueError("compute.vllm_gpu_memory_utilization must be in (0, 1]")
        for name in ("vllm_tensor_parallel_size", "mem_mb_per_job", "runtime_min_per_job"):
            if getattr(self, name) < 1:
                raise ValueError(f"compute.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("gpus_per_job", "gpus_per_eval_job"):
            if getattr(self, name) < 0:
                raise ValueError(f"compute.{name} must be >= 0, got {getattr(self, name)}")

    @classmethod
    def from_config(cls, config: dict | None) -> ComputeConfig:
        """From a workflow config (its ``compute`` section; the CPU defaults when absent)."""
        section = dict((config or {}).get("compute") or {})
        vllm = section.pop("vllm", None) or {}
        for key, value in vllm.items():
            section[f"vllm_{key}"] = value
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(section) - known)
        if unknown:
            raise ValueError(f"compute: unknown setting(s) {unknown}")
        return cls(**section)

    @property
    def bf16(self) -> bool:
        return self.precision == "bf16"

    def eval_dtype(self) -> str:
        return "bfloat16" if self.bf16 else "float32"

    def trainer_args(self) -> dict:
        """Keyword arguments of TRL's ``SFTConfig`` and ``GRPOConfig`` for this hardware."""
        return {"use_cpu": self.device == "cpu", "bf16": self.bf16,
                "activation_checkpointing": self.gradient_checkpointing}

    def grpo_args(self) -> dict:
        """Extra ``GRPOConfig`` arguments: TRL's vLLM integration when ``vllm_rollouts``."""
        if not self.vllm_rollouts:
            return {"use_vllm": False}
        args = {"use_vllm": True, "vllm_mode": self.vllm_mode}
        if self.vllm_mode == "colocate":
            args.update(vllm_gpu_memory_utilization=self.vllm_gpu_memory_utilization,
                        vllm_tensor_parallel_size=self.vllm_tensor_parallel_size)
        else:
            args.update(vllm_server_base_url=self.vllm_server_base_url)
        return args

    def launch_command(self, python: str) -> str:
        """Shell prefix that runs ``meml`` for a training job: ``python -m meml`` or ``accelerate launch``."""
        if self.launcher == "python":
            return f'"{python}" -m meml'
        config_file = Path(self.accelerate_config)
        return (f'"{python}" -m accelerate.commands.launch --config_file "{config_file}" '
                f"--num_processes {self.num_processes} -m meml")
