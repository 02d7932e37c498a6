"""GPU smoke test: GRPO, MEML-GRPO and an lm-eval evaluation of a tiny local Qwen2, with figures.

    bash bench/gpu_smoke.sh                         # the usual way (sets the offline environment, finds Python)
    bash bench/gpu_smoke.sh --steps 2 --out "$OUT/gpu_smoke.json" --max-minutes 8

Stages, each in its own Python process (a fresh CUDA context, so peak memory is per stage, and a
vLLM engine never has to be created twice in one process):

1. ``setup``: detect the mode, write a synthetic GSM8K world (``train`` and ``test`` splits) and a
   randomly initialised tiny Qwen2 with a tokenizer trained on it (no download). On a GPU the model
   is hidden 256 / 4 layers (head dim 64, which vLLM's attention kernels accept); on the CPU it has
   the test fixture's size (hidden 64, 2 layers).
2. ``grpo``: ``meml.training.rl.train_rl`` of GRPO with ``baselines.rl.build_trainer`` (MoE-SFT-GRPO's row
   layout: every question under every expert prompt) for ``--steps`` steps.
3. ``meml``: MEML-GRPO assembled as ``meml.pipeline.stages.riel`` does (``MEMLConfig.for_method`` ->
   ``grpo_run`` -> ``train_rl(..., build=meml.method.trainer.trainer_builder(...))``).
4. ``eval``: ``meml.evaluation.evaluate_model`` of the GRPO result on the first ``--eval-items``
   test items under expert 0's prompt (lm-eval, greedy).

Mode: with a CUDA device, ``ComputeConfig(device="cuda", precision="bf16")`` (fp32 when the GPU has
no bf16), vLLM colocate rollouts and vLLM evaluation when ``import vllm`` works; without one the CPU
defaults ("DEGRADED"). ``--vllm off`` forces the transformers backends, ``--vllm on`` fails when
vLLM cannot be imported.

Reward (``--reward``, default ``smoke``): an untrained model never answers correctly, so with the
accuracy reward every group has zero variance, every advantage is zero, and MEML's mutual-learning
term never fires. The smoke reward (as in tests/test_meml_trainer.py) pays every answer under
expert 0's prompt and, under the other prompts, answers of even character length, so advantages
vary, weights change, and MEML's mutual-learning and buffer terms run every step. ``--reward
accuracy`` uses the real reward. Evaluation always scores accuracy.

Everything is written under a fresh folder in ``--workdir`` (default: the system temp folder);
the folder is removed after a PASS unless ``--keep``. The report goes to stdout and, as JSON, to
``--out``. Exit status: 0 PASS, 1 FAIL, 3 the ``--max-minutes`` guard fired.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from meml.prompts import DEFAULT_EXPERT_PROMPTS  # noqa: E402 - needs the repository on sys.path

STAGES = ("setup", "grpo", "meml", "eval")
EXIT_PASS, EXIT_FAIL, EXIT_TIMEOUT = 0, 1, 3
DEGRADED_NOTE = "DEGRADED: no CUDA device, ran on CPU in fp32 without vLLM"
ACCURACY_NOTE = "meaningless: a randomly initialised tiny model, a few RL steps; this only proves the path runs"
GIB = 1024 ** 3

# Sizes per mode. GPU: large enough that generation, not Python overhead, dominates a step.
SIZES = {
    "cuda": {
        "model": {"hidden_size": 256, "num_layers": 4, "num_heads": 4, "num_kv_heads": 2, "intermediate_size": 1024,
                  "max_position_embeddings": 512},
        "vocab_size": 512,
        "rl": {"prompts_per_step": 16, "num_generations": 8, "max_completion_length": 128, "threads": 4},
        "world": {"train": 160, "test": 60},
        "eval": {"max_new_tokens": 128, "batch_size": 64},
    },
    "cpu": {  # tests/conftest.py's tiny_model_dir
        "model": {"hidden_size": 64, "num_layers": 2, "num_heads": 4, "num_kv_heads": 2, "intermediate_size": 128,
                  "max_position_embeddings": 256},
        "vocab_size": 400,
        "rl": {"prompts_per_step": 4, "num_generations": 4, "max_completion_length": 32, "threads": 1},
        "world": {"train": 60, "test": 60},
        "eval": {"max_new_tokens": 32, "batch_size": 64},
    },
}


class TimeGuard(Exception):
    pass


# =========================================================================== helpers shared by both sides


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _gib(n: int | None) -> float | None:
    return None if n is None else round(n / GIB, 3)


def _fmt(value, digits: int = 1, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}{unit}"
    return f"{value}{unit}"


# =========================================================================== stage side (child processes)


class NvmlPoller:
    """Peak memory in use on the whole GPU (NVML, as nvidia-smi shows it), sampled every 0.2 s; optional.

    torch.cuda.max_memory_allocated only sees PyTorch's caching allocator; the CUDA context, NCCL
    and a vLLM pool allocated outside it appear here. NVML is not the CUDA runtime, so polling it
    cannot disturb CUDA graph capture.
    """

    def __init__(self):
        self.peak = None
        self._stop = threading.Event()
        self._thread = None
        try:
            import pynvml

            pynvml.nvmlInit()
            visible = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0].strip()
            index = int(visible) if visible.isdigit() else 0
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            self._nvml = pynvml
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        except Exception:  # no pynvml, no driver: the figure is simply absent
            self._thread = None

    def _run(self):
        while not self._stop.is_set():
            try:
                used = self._nvml.nvmlDeviceGetMemoryInfo(self._handle).used
                self.peak = used if self.peak is None else max(self.peak, used)
            except Exception:
                return
            self._stop.wait(0.2)

    def stop(self) -> int | None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=2)
        return self.peak


class GenerationTimer:
    """Wraps TRL's ``GRPOTrainer._generate_single_turn``: wall time and completion tokens of every rollout call.

    The timed span is the whole call: the vLLM weight sync before generation (vLLM) or the model
    unwrapping (transformers) included; on CUDA it ends with a synchronize.
    """

    def __init__(self, cuda: bool):
        from trl import GRPOTrainer

        self.calls, self.seconds, self.tokens, self.completions, self.per_call = 0, 0.0, 0, 0, []
        original = GRPOTrainer._generate_single_turn
        timer = self

        def timed(trainer, *args, **kwargs):
            import torch

            if cuda:
                torch.cuda.synchronize()
            started = time.perf_counter()
            completion_ids, logprobs = original(trainer, *args, **kwargs)
            if cuda:
                torch.cuda.synchronize()
            elapsed = time.perf_counter() - started
            tokens = sum(len(ids) for ids in completion_ids)
            timer.calls += 1
            timer.seconds += elapsed
            timer.tokens += tokens
            timer.completions += len(completion_ids)
            timer.per_call.append({"seconds": round(elapsed, 4), "tokens": tokens, "completions": len(completion_ids)})
            return completion_ids, logprobs

        GRPOTrainer._generate_single_turn = timed

    def figures(self) -> dict:
        steady = self.per_call[1:]  # the first call pays warm-up (kernels, vLLM's first batch)
        steady_s = sum(c["seconds"] for c in steady)
        return {
            "generation_calls": self.calls,
            "generation_s": round(self.seconds, 3),
            "completions_generated": self.completions,
            "completion_tokens_generated": self.tokens,
            "tokens_per_s": round(self.tokens / self.seconds, 1) if self.seconds else None,
            "tokens_per_s_after_first_call": (round(sum(c["tokens"] for c in steady) / steady_s, 1)
                                              if steady_s else None),
            "per_call": self.per_call,
        }


def smoke_reward(prompts, completions, expert=None, **kwargs) -> list[float]:
    """Expert 0 is always right; the others are right on answers of even character length (varies in a group)."""
    texts = [c[0]["content"] if isinstance(c, list) else c for c in completions]
    experts = expert if expert is not None else [None] * len(texts)
    return [1.0 if e == 0 else float(len(t) % 2 == 0) for t, e in zip(texts, experts)]


def _compute(setup: dict):
    from meml.training.compute import ComputeConfig, VLLMConfig

    mode = setup["mode"]
    if mode["device"] == "cpu":
        return ComputeConfig()
    return ComputeConfig(device="cuda", precision=mode["precision"],
                         vllm=VLLMConfig(rollouts=mode["vllm"], mode="colocate"),
                         eval_backend="vllm" if mode["vllm"] else "hf", gpus_per_job=1, gpus_per_eval_job=1)


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("torch", "transformers", "trl", "lm_eval", "accelerate", "datasets", "vllm"):
        try:
            out[name] = version(name.replace("_", "-") if name == "lm_eval" else name)
        except PackageNotFoundError:
            out[name] = None
    return out


def stage_setup(plan: dict, run_dir: Path) -> dict:
    """Detect the mode; write the world and the tiny model."""
    import torch

    result = {"torch_cuda_build": torch.version.cuda}
    cuda = torch.cuda.is_available() and torch.cuda.device_count() > 0
    mode = {"device": "cuda" if cuda else "cpu", "precision": "fp32", "vllm": False, "gpu_name": None,
            "gpu_count": torch.cuda.device_count() if cuda else 0, "notes": []}
    if cuda:
        mode["gpu_name"] = torch.cuda.get_device_name(0)
        if torch.cuda.is_bf16_supported():
            mode["precision"] = "bf16"
        else:
            mode["notes"].append("this GPU has no bf16: trained in fp32")
    vllm = {"importable": False, "version": None, "error": None}
    if plan["vllm"] != "off":
        try:
            import vllm as vllm_module

            vllm.update(importable=True, version=getattr(vllm_module, "__version__", None))
        except Exception as err:  # ImportError, or a broken CUDA/driver combination raising anything
            vllm["error"] = f"{type(err).__name__}: {err}".splitlines()[0][:300]
    else:
        vllm["error"] = "not tried (--vllm off)"
    if plan["vllm"] == "on" and not (cuda and vllm["importable"]):
        raise RuntimeError(f"--vllm on, but {'vLLM cannot be imported: ' + str(vllm['error']) if cuda else 'no CUDA'}")
    mode["vllm"] = cuda and vllm["importable"]
    result.update(mode=mode, vllm=vllm)

    sizes = SIZES[mode["device"]]
    from meml.data import load_records
    from meml.tiny import (
        build_model,
        count_parameters,
        save_pretrained_folder,
        train_tokenizer,
    )
    from meml.world.generate import WorldConfig, write_world

    world = run_dir / "world"
    splits = {"train": sizes["world"]["train"], "test": max(sizes["world"]["test"], plan["eval_items"])}
    write_world(world, WorldConfig(seed=0, splits=splits), tasks=("gsm8k",))
    records = load_records("synth_gsm8k", "train", world)
    corpus = [r.question for r in records] + [r.rationale for r in records] + list(DEFAULT_EXPERT_PROMPTS) * 50
    tokenizer = train_tokenizer(corpus, "qwen2", vocab_size=sizes["vocab_size"])
    model = build_model("qwen2", tokenizer, seed=0, **sizes["model"])
    model_dir = save_pretrained_folder(model, tokenizer, run_dir / "model")
    result["model"] = {"path": str(model_dir), "family": "qwen2", "vocab_size": len(tokenizer),
                       "parameters": count_parameters(model), **sizes["model"]}
    result["world"] = {"path": str(world), "dataset": "synth_gsm8k", "splits": splits}
    return result


def grpo_run(plan: dict, device: str):
    """The GRPO run of both training stages (``RLConfig``; GRPO's published settings fill what is not set here)."""
    from meml.training.rl_config import RLConfig

    # decoder "trl": the smoke times TRL's generation (transformers or vLLM), also in the degraded CPU mode
    return RLConfig(algorithm="GRPO", **SIZES[device]["rl"], steps=plan["steps"], save_steps=plan["steps"],
                    learning_rate=1e-5, decoder="trl")


def meml_config():
    """MEML-GRPO's settings (every expert, IML and HSFT on), with a low bar and a small buffer, so that the
    buffer's SFT update happens within a step or two."""
    from meml.method.config import MEMLConfig
    from meml.methods import Method

    return MEMLConfig(buffer_k=1, buffer_capacity=2, buffer_probability="always").for_method(Method.parse("MEML-GRPO"))


def _vllm_dtype(trainer) -> str | None:
    """The dtype TRL's colocated vLLM engine runs in (None without vLLM or when this vLLM hides it)."""
    try:
        return str(trainer.vllm_generation.llm.llm_engine.model_config.dtype)
    except Exception:
        return None


def _train(plan: dict, setup: dict, run_dir: Path, which: str) -> dict:
    import meml.training.rl
    from baselines.rl import build_trainer, rl_rows
    from meml.data import load_records
    from meml.training.rl import train_rl
    from meml.training.rl_log import read_log

    compute = _compute(setup)
    cuda = compute.device == "cuda"
    if plan["reward"] == "smoke":  # every trainer's rewards come from here (meml.training.rl.trainer_kwargs)
        meml.training.rl._reward_functions = lambda task, run: [smoke_reward]
    timer = GenerationTimer(cuda)
    records = load_records("synth_gsm8k", "train", setup["world"]["path"])
    prompts = list(DEFAULT_EXPERT_PROMPTS)
    run = grpo_run(plan, compute.device)
    captured = {}

    def capture(build):
        def wrapped(*args, **kwargs):
            trainer = build(*args, **kwargs)
            captured["trainer"] = trainer
            return trainer
        return wrapped

    if which == "grpo":
        experts = list(range(len(prompts)))
        rows = rl_rows(records, experts, prompts)
        build, extra = capture(build_trainer), None
        rollouts_per_step = run.prompts_per_step * run.num_generations
        layout = (f"{run.prompts_per_step} prompts x {run.num_generations} generations "
                  f"(a prompt = one (question, expert) pair)")
    else:  # as meml.pipeline.stages.riel assembles it
        from dataclasses import asdict

        from meml.method.trainer import meml_rows, trainer_builder

        settings = meml_config()
        run = settings.grpo_run(run, len(prompts))
        experts = settings.experts(len(prompts))
        rows = meml_rows(records)
        build, extra = capture(trainer_builder(settings, prompts)), {"meml": asdict(settings)}
        rollouts_per_step = run.prompts_per_step * len(experts) * run.num_generations
        layout = (f"{run.prompts_per_step} questions x {len(experts)} experts x {run.num_generations} generations "
                  "(TRL's prompts_per_step x num_generations, times the experts MEML expands each question to)")
    out = run_dir / "runs" / which
    started = time.perf_counter()
    metrics = train_rl(setup["model"]["path"], rows, "gsm8k", run, out, run_dir / "work" / which, build=build,
                       extra_settings=extra, compute=compute)
    train_s = time.perf_counter() - started
    trainer = captured.get("trainer")
    history = read_log(out / "metrics.jsonl")

    # Figures from the run's metrics.jsonl: completion_length (TRL's mean completion tokens, EOS
    # included, over every rollout of the step) and step_time (TRL's wall time of training_step:
    # generation, reward scoring, the reference/old log-probs and forward+backward; not the
    # optimizer step). So tokens / step_time is a lower bound of the generation throughput.
    tokens_log = sum(r["completion_length"] * rollouts_per_step for r in history)
    step_s = sum(r.get("step_time", 0.0) for r in history)
    later = history[1:]
    later_tokens = sum(r["completion_length"] * rollouts_per_step for r in later)
    later_s = sum(r.get("step_time", 0.0) for r in later)
    return {
        "out": str(out),
        "train_wall_s": round(train_s, 3),
        "run_metrics": metrics,
        "steps_logged": len(history),
        "steps_requested": plan["steps"],
        "rows": len(rows),
        "rollouts_per_step": rollouts_per_step,
        "rollout_layout": layout,
        "settings": {"prompts_per_step": run.prompts_per_step, "num_generations": run.num_generations,
                     "max_completion_length": run.max_completion_length, "experts": experts,
                     "reward": plan["reward"]},
        "trainer": None if trainer is None else {
            "device": str(trainer.accelerator.device), "bf16": bool(trainer.args.bf16),
            "use_vllm": bool(getattr(trainer, "use_vllm", False)),
            "vllm_mode": getattr(trainer.args, "vllm_mode", None) if getattr(trainer, "use_vllm", False) else None,
            "model_dtype": str(next(trainer.model.parameters()).dtype), "vllm_dtype": _vllm_dtype(trainer)},
        "log": {
            "completion_length_per_step": [r.get("completion_length") for r in history],
            "step_time_per_step": [r.get("step_time") for r in history],
            "reward_per_step": [r.get("reward") for r in history],
            "loss_per_step": [r.get("loss") for r in history],
            "mutual_questions_per_step": [r.get("mutual_questions") for r in history] if which == "meml" else None,
            "buffer_sft_updates_last": history[-1].get("buffer_sft_updates") if history and which == "meml" else None,
            "completion_tokens": round(tokens_log, 1),
            "step_time_s": round(step_s, 3),
            "tokens_per_step_time_s": round(tokens_log / step_s, 1) if step_s else None,
            "tokens_per_step_time_s_after_first_step": round(later_tokens / later_s, 1) if later_s else None,
        },
        "generation": timer.figures(),
    }


def stage_eval(plan: dict, setup: dict, run_dir: Path) -> dict:
    from meml.data import load_records
    from meml.evaluation import evaluate_model, write_task_docs

    compute = _compute(setup)
    sizes = SIZES[compute.device]
    grpo = _read_json(run_dir / "stage_grpo.json")["result"]
    records = load_records("synth_gsm8k", "test", setup["world"]["path"])[: plan["eval_items"]]
    docs = write_task_docs(records, run_dir / "eval" / "synth_gsm8k.jsonl")
    started = time.perf_counter()
    results = evaluate_model(grpo["out"], docs, "meml_synth_gsm8k", {0: DEFAULT_EXPERT_PROMPTS[0]},
                             max_new_tokens=sizes["eval"]["max_new_tokens"], batch_size=sizes["eval"]["batch_size"],
                             threads=sizes["rl"]["threads"], compute=compute)
    eval_s = time.perf_counter() - started
    summary, samples = results[0]
    return {"model": grpo["out"], "backend": compute.eval_backend, "items": summary["n"],
            "accuracy": summary["accuracy"], "lm_eval_exact_match": summary["lm_eval_exact_match"],
            "max_new_tokens": sizes["eval"]["max_new_tokens"], "eval_wall_s": round(eval_s, 3),
            "example_completion": samples[0]["completion"][:200] if samples else None, "note": ACCURACY_NOTE}


def run_stage(name: str, run_dir: Path) -> int:
    """Child process: run one stage, write ``stage_<name>.json`` (result or error) and return an exit status."""
    plan = _read_json(run_dir / "plan.json")
    record = {"stage": name, "ok": False}
    poller = None
    cuda = False
    started = time.perf_counter()
    try:
        if name != "setup":
            setup = _read_json(run_dir / "stage_setup.json")["result"]
            cuda = setup["mode"]["device"] == "cuda"
            if cuda:
                import torch

                torch.cuda.reset_peak_memory_stats()
                poller = NvmlPoller()
        if name == "setup":
            result = stage_setup(plan, run_dir)
        elif name in ("grpo", "meml"):
            result = _train(plan, setup, run_dir, name)
        elif name == "eval":
            result = stage_eval(plan, setup, run_dir)
        else:
            raise ValueError(f"unknown stage {name!r}")
        record.update(ok=True, result=result)
    except BaseException as err:  # noqa: BLE001 - reported to the parent, which decides
        record["error"] = f"{type(err).__name__}: {err}"
        record["traceback"] = traceback.format_exc()
        traceback.print_exc()
    record["work_s"] = round(time.perf_counter() - started, 3)
    memory = {"peak_allocated_bytes": None, "peak_reserved_bytes": None, "peak_device_used_bytes": None}
    if cuda:
        import torch

        try:
            memory["peak_allocated_bytes"] = torch.cuda.max_memory_allocated()
            memory["peak_reserved_bytes"] = torch.cuda.max_memory_reserved()
        except Exception:
            pass
        if poller is not None:
            memory["peak_device_used_bytes"] = poller.stop()
    record["memory"] = memory
    _write_json(run_dir / f"stage_{name}.json", record)
    sys.stdout.flush()
    sys.stderr.flush()
    # Leave at once: the result is written, and the teardown of a vLLM engine or a torch.distributed
    # group at interpreter exit can hang (the parent would then wait for the time guard).
    os._exit(0 if record["ok"] else 1)


# =========================================================================== orchestrator (parent process)


class Runner:
    """Runs the stages as child processes under one deadline; kills a child's whole process group on abort."""

    def __init__(self, run_dir: Path, deadline: float, verbose: bool):
        self.run_dir, self.deadline, self.verbose = run_dir, deadline, verbose
        self.child = None
        self.killed = None  # (stage, seconds, log) of a stage the time guard killed
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, frame):
        self.kill_child()
        raise SystemExit(128 + signum)

    def kill_child(self):
        proc, self.child = self.child, None
        if proc is None or proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def run(self, name: str, env: dict) -> tuple[float, Path]:
        remaining = self.deadline - time.monotonic()
        if remaining < 5:
            raise TimeGuard(f"no time left for stage {name}")
        log_path = self.run_dir / "logs" / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--_stage", name, "--_run-dir", str(self.run_dir)]
        print(f"[gpu_smoke] stage {name} ... (log: {log_path})", flush=True)
        started = time.monotonic()
        with open(log_path, "wb") as log:
            self.child = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, start_new_session=True,
                                          stdout=None if self.verbose else log,
                                          stderr=None if self.verbose else subprocess.STDOUT)
            try:
                self.child.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                self.kill_child()
                self.killed = (name, time.monotonic() - started, log_path)
                raise TimeGuard(f"stage {name} was still running when the limit was reached (killed after "
                                f"{time.monotonic() - started:.0f} s)") from None
            except KeyboardInterrupt:
                self.kill_child()
                raise
            self.child = None
        wall = time.monotonic() - started
        print(f"[gpu_smoke] stage {name} finished in {wall:.1f} s", flush=True)
        return wall, log_path


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def child_env(run_dir: Path) -> dict:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    caches = run_dir / "cache"
    env.setdefault("HF_DATASETS_CACHE", str(caches / "hf_datasets"))  # lm-eval's json task dataset
    env.setdefault("VLLM_CACHE_ROOT", str(caches / "vllm"))  # shared torch.compile cache of the three vLLM engines
    env.setdefault("TRITON_CACHE_DIR", str(caches / "triton"))
    env.setdefault("TORCHINDUCTOR_CACHE_DIR", str(caches / "inductor"))
    # lm-eval's vLLM engine in the evaluation process itself (no engine-core child), so that
    # torch.cuda.max_memory_allocated sees its KV cache. TRL's colocate engine is in-process anyway.
    env.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    # TRL's colocate mode sets RANK, LOCAL_RANK, WORLD_SIZE and a free MASTER_PORT itself after the
    # accelerator exists (trl/generation/vllm_generation.py); setting them before would make
    # accelerate think it was launched distributed. Only the address is fixed here.
    env.setdefault("MASTER_ADDR", "127.0.0.1")
    return env


def _mode_line(setup: dict | None) -> str:
    if setup is None:
        return "unknown (setup failed)"
    mode = setup["mode"]
    if mode["device"] == "cpu":
        return DEGRADED_NOTE
    rollouts = "vLLM colocate rollouts" if mode["vllm"] else "transformers rollouts (vLLM not importable)"
    evaluation = "vLLM evaluation" if mode["vllm"] else "hf evaluation"
    return (f"GPU: {mode['gpu_name']} (x{mode['gpu_count']} visible, 1 used), {mode['precision']}, "
            f"{rollouts}, {evaluation}")


def checks_of(report: dict, plan: dict) -> list[dict]:
    checks = []

    def check(name, ok, detail=""):
        checks.append({"check": name, "ok": bool(ok), "detail": detail})

    stages = report["stages"]
    for name in STAGES:
        st = stages.get(name)
        ok = st is not None and st.get("ok")
        check(f"stage {name} ran", ok, "" if ok else (st or {}).get("error", "not run"))
    setup = report.get("setup")
    for name in ("grpo", "meml"):
        res = (stages.get(name) or {}).get("result")
        if not res:
            continue
        steps = (res.get("run_metrics") or {}).get("steps")
        check(f"{name}: {plan['steps']} steps trained and logged",
              steps == plan["steps"] and res["steps_logged"] == plan["steps"],
              f"trainer steps {steps}, log rows {res['steps_logged']}")
        check(f"{name}: rollouts generated", res["generation"]["completion_tokens_generated"] > 0,
              f"{res['generation']['completion_tokens_generated']} tokens")
        if setup and res.get("trainer"):
            want = setup["mode"]["device"]
            got = res["trainer"]["device"]
            check(f"{name}: trained on {want}", got.startswith(want), f"trainer device {got}")
            check(f"{name}: vLLM rollouts {'on' if setup['mode']['vllm'] else 'off'} as planned",
                  res["trainer"]["use_vllm"] == setup["mode"]["vllm"], f"use_vllm {res['trainer']['use_vllm']}")
        if name == "meml" and plan["reward"] == "smoke":
            mq = [q or 0 for q in res["log"]["mutual_questions_per_step"]]
            check("meml: mutual-learning term fired (smoke reward)", sum(mq) > 0, f"mutual questions per step {mq}")
            check("meml: hard-example buffer SFT update ran (smoke reward)",
                  (res["log"]["buffer_sft_updates_last"] or 0) >= 1,
                  f"buffer SFT updates {res['log']['buffer_sft_updates_last']}")
    ev = (stages.get("eval") or {}).get("result")
    if ev:
        acc = ev["accuracy"]
        check("eval: every item scored", ev["items"] == plan["eval_items"], f"{ev['items']} of {plan['eval_items']}")
        check("eval: accuracy is a number in [0, 1]", isinstance(acc, (int, float)) and not math.isnan(acc)
              and 0 <= acc <= 1, f"{acc}")
    check(f"total wall time within {plan['max_minutes']} min", report["total_wall_s"] <= plan["max_minutes"] * 60,
          f"{report['total_wall_s']:.1f} s")
    return checks


def print_report(report: dict, plan: dict) -> None:
    p = print
    setup = report.get("setup") or {}
    versions = report.get("versions") or {}
    vllm = setup.get("vllm") or {}
    p("")
    p("=" * 100)
    p("MEML-GRPO GPU smoke test")
    p("=" * 100)
    p(f"mode:      {report['mode']}")
    for note in (setup.get("mode") or {}).get("notes", []):
        p(f"           note: {note}")
    vllm_text = vllm.get("version") if vllm.get("importable") else f"not importable ({vllm.get('error')})"
    p(f"versions:  python {versions.get('python')}, torch {versions.get('torch')} (CUDA build "
      f"{setup.get('torch_cuda_build')}), transformers {versions.get('transformers')}, trl {versions.get('trl')}, "
      f"lm_eval {versions.get('lm_eval')}, accelerate {versions.get('accelerate')}, vllm {vllm_text}")
    model = setup.get("model")
    if model:
        p(f"model:     tiny Qwen2 (random init): hidden {model['hidden_size']}, {model['num_layers']} layers, "
          f"{model['num_heads']} heads / {model['num_kv_heads']} kv, vocab {model['vocab_size']}, "
          f"{model['parameters'] / 1e6:.2f}M parameters")
    p(f"reward:    {plan['reward']}" + (" (expert 0 always right, others: even-length answers; see --help)"
                                          if plan["reward"] == "smoke" else " (accuracy)"))
    p(f"workdir:   {report['run_dir']}" + (" (removed after the PASS; --keep keeps it)"
                                            if report.get("run_dir_removed") else ""))
    p("")
    cpu = (setup.get("mode") or {}).get("device", "cpu") == "cpu"
    p(f"{'stage':<7}{'wall s':>9}{'work s':>9}   {'peak alloc':>11}{'peak reserved':>15}{'peak GPU used (NVML)':>22}")
    for name in STAGES:
        st = report["stages"].get(name)
        if st is None:
            p(f"{name:<7}{'not run':>9}")
            continue
        mem = st.get("memory") or {}
        if name == "setup" or cpu:
            mems = ("n/a on CPU" if cpu else "n/a", "", "")
        else:
            mems = (_fmt(_gib(mem.get("peak_allocated_bytes")), 2, " GiB"),
                    _fmt(_gib(mem.get("peak_reserved_bytes")), 2, " GiB"),
                    _fmt(_gib(mem.get("peak_device_used_bytes")), 2, " GiB"))
        status = "" if st.get("ok") else "   FAILED"
        p(f"{name:<7}{st['wall_s']:>9.1f}{_fmt(st.get('work_s')):>9}   {mems[0]:>11}{mems[1]:>15}{mems[2]:>22}{status}")
    p("  wall s: the stage's process from start to exit (interpreter start included); work s: the stage's own "
      "code (its imports included).")
    if not cpu:
        p("  peak alloc / reserved: torch.cuda.max_memory_allocated / max_memory_reserved of the stage's process "
          "(fresh per stage);")
        p("  peak GPU used: whole-device memory in use (NVML), CUDA context and memory outside PyTorch's allocator "
          "included.")
        if (setup.get("mode") or {}).get("vllm"):
            p("  With vLLM the peaks hold vLLM's pre-allocated KV cache: vllm_gpu_memory_utilization (0.3) of the GPU "
              "in grpo/meml, lm-eval's 0.8 in eval -- a reservation, not what the tiny model needs.")
    p("")
    for name, title in (("grpo", "GRPO"), ("meml", "MEML-GRPO")):
        res = (report["stages"].get(name) or {}).get("result")
        if not res:
            continue
        gen, log = res["generation"], res["log"]
        p(f"{title}: {res['steps_logged']} steps, {res['rollouts_per_step']} rollouts per step = "
          f"{res['rollout_layout']}; max {res['settings']['max_completion_length']} new tokens")
        if res.get("trainer"):
            t = res["trainer"]
            vllm_text = f"{t['vllm_mode']} ({t.get('vllm_dtype') or 'dtype unknown'})" if t["use_vllm"] else "off"
            p(f"  trainer: device {t['device']}, bf16 {t['bf16']}, vLLM {vllm_text}, master weights "
              f"{t['model_dtype']}; train_rl wall {res['train_wall_s']:.1f} s")
        p(f"  rollout tokens/s (generation only): {_fmt(gen['tokens_per_s'])} "
          f"(after the first call: {_fmt(gen['tokens_per_s_after_first_call'])})")
        p("    = completion tokens returned by TRL's GRPOTrainer._generate_single_turn "
          f"({gen['completion_tokens_generated']} tokens, EOS included, {gen['completions_generated']} completions "
          f"in {gen['generation_calls']} calls)")
        p(f"      / wall time of those calls ({gen['generation_s']:.2f} s"
          f"{'' if cpu else '; CUDA-synchronised; vLLM weight sync included when vLLM generates'})")
        p(f"  tokens per training-step second (metrics.jsonl): {_fmt(log['tokens_per_step_time_s'])} "
          f"(after step 1: {_fmt(log['tokens_per_step_time_s_after_first_step'])})")
        p(f"    = sum over steps of completion_length x {res['rollouts_per_step']} rollouts per step "
          f"({log['completion_tokens']:.0f} tokens) / sum of step_time ({log['step_time_s']:.2f} s);")
        p("      step_time is TRL's training_step wall time (generation + scoring + forward/backward), so this is a "
          "lower bound of generation speed")
        if name == "meml":
            p(f"  MEML terms: mutual-learning questions per step {log['mutual_questions_per_step']}, buffer SFT "
              f"updates {log['buffer_sft_updates_last']}")
    ev = (report["stages"].get("eval") or {}).get("result")
    if ev:
        p(f"eval ({ev['backend']} backend, greedy, max {ev['max_new_tokens']} new tokens, expert 0's prompt): "
          f"accuracy {ev['accuracy']:.3f} on {ev['items']} synthetic GSM8K test items, lm-eval exact_match "
          f"{ev['lm_eval_exact_match']} -- {ev['note']}")
    p("")
    p(f"total wall time: {report['total_wall_s']:.1f} s ({report['total_wall_s'] / 60:.2f} min; limit "
      f"{plan['max_minutes']} min)")
    for c in report["checks"]:
        p(f"  [{'ok' if c['ok'] else 'FAIL'}] {c['check']}" + (f": {c['detail']}" if c["detail"] else ""))
    for err in report["errors"]:
        p(f"ERROR: {err}")
    p(f"JSON: {report['json']}")
    p(report["status"] + (" (aborted by the time guard)" if report["timed_out"] else ""))


def _resolve(path: str | None) -> Path | None:
    """A user path relative to the caller's directory (the wrapper cds to the repository root)."""
    if path is None:
        return None
    p = Path(path).expanduser()
    if not p.is_absolute():
        p = Path(os.environ.get("GPU_SMOKE_CALLER_CWD", os.getcwd())) / p
    return p.resolve()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="See the module docstring of bench/gpu_smoke.py for what each stage does.")
    parser.add_argument("--steps", type=int, default=4, help="RL steps of each of GRPO and MEML-GRPO (default 4)")
    parser.add_argument("--max-minutes", type=float, default=8.0,
                        help="global time guard: abort (exit 3) when the whole run exceeds it (default 8)")
    parser.add_argument("--workdir", help="folder in which a fresh run folder is made (default: the temp folder)")
    parser.add_argument("--out", help="JSON report path (default: gpu_smoke.json in a fresh temp folder)")
    parser.add_argument("--eval-items", type=int, default=50, help="test items evaluated (default 50)")
    parser.add_argument("--reward", choices=("smoke", "accuracy"), default="smoke",
                        help="training reward: smoke (varies for an untrained model, so every loss term runs; "
                             "default) or accuracy (the real one; all zero for an untrained model)")
    parser.add_argument("--vllm", choices=("auto", "on", "off"), default="auto",
                        help="vLLM rollouts and evaluation on a GPU: auto (when `import vllm` works), on (fail "
                             "without it), off")
    parser.add_argument("--keep", action="store_true", help="keep the run folder after a PASS")
    parser.add_argument("--verbose", action="store_true", help="stream the stages' output instead of logging it")
    parser.add_argument("--_stage", help=argparse.SUPPRESS)
    parser.add_argument("--_run-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args._stage:
        return run_stage(args._stage, Path(args._run_dir))
    if args.steps < 1 or args.eval_items < 1 or args.max_minutes <= 0:
        parser.error("--steps and --eval-items must be >= 1 and --max-minutes > 0")

    started = time.monotonic()
    deadline = started + args.max_minutes * 60
    base = _resolve(args.workdir) or Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="gpu_smoke-", dir=base))
    out = _resolve(args.out) or Path(tempfile.mkdtemp(prefix="gpu_smoke_out-")) / "gpu_smoke.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    plan = {"steps": args.steps, "max_minutes": args.max_minutes, "eval_items": args.eval_items,
            "reward": args.reward, "vllm": args.vllm}
    _write_json(run_dir / "plan.json", plan)
    env = child_env(run_dir)
    runner = Runner(run_dir, deadline, args.verbose)
    report = {"status": "FAIL", "mode": None, "degraded": None, "plan": plan, "run_dir": str(run_dir),
              "json": str(out), "stages": {}, "setup": None, "errors": [], "timed_out": False}
    print(f"[gpu_smoke] run folder {run_dir}; limit {args.max_minutes} min", flush=True)
    exit_code = EXIT_FAIL
    try:
        for name in STAGES:
            wall, log_path = runner.run(name, env)
            path = run_dir / f"stage_{name}.json"
            if not path.exists():
                report["stages"][name] = {"ok": False, "wall_s": round(wall, 3),
                                          "error": "the stage process died without writing its result",
                                          "log_tail": _tail(log_path)}
            else:
                report["stages"][name] = {**_read_json(path), "wall_s": round(wall, 3)}
            if name == "setup" and report["stages"][name].get("ok"):
                report["setup"] = report["stages"][name]["result"]
            if not report["stages"][name].get("ok"):
                report["stages"][name]["log_tail"] = _tail(log_path)
                report["errors"].append(f"stage {name} failed: {report['stages'][name].get('error')}")
                break
    except TimeGuard as err:
        report["timed_out"] = True
        if runner.killed:
            name, wall, log_path = runner.killed
            report["stages"][name] = {"ok": False, "wall_s": round(wall, 3), "error": "killed by the time guard",
                                      "log_tail": _tail(log_path)}
        report["errors"].append(f"ABORTED by the time guard (--max-minutes {args.max_minutes}): {err}")
    except KeyboardInterrupt:
        runner.kill_child()
        report["errors"].append("interrupted")
    report["total_wall_s"] = round(time.monotonic() - started, 3)
    setup = report["setup"]
    report["mode"] = _mode_line(setup)
    report["degraded"] = None if setup is None else setup["mode"]["device"] == "cpu"
    report["versions"] = _versions()  # package metadata: known even when the setup stage failed
    report["checks"] = checks_of(report, plan)
    ok = not report["errors"] and all(c["ok"] for c in report["checks"])
    report["status"] = "PASS" if ok else "FAIL"
    report["summary"] = summary_of(report)
    if report["timed_out"]:
        exit_code = EXIT_TIMEOUT
    elif ok:
        exit_code = EXIT_PASS
    for name, st in report["stages"].items():
        if not st.get("ok"):
            print(f"\n----- last lines of the {name} stage's log ({run_dir / 'logs' / (name + '.log')}) -----")
            print(st.get("log_tail") or _tail(run_dir / "logs" / f"{name}.log"))
    if ok and not args.keep:
        shutil.rmtree(run_dir, ignore_errors=True)
        report["run_dir_removed"] = True
    _write_json(out, report)
    print_report(report, plan)  # its last line is PASS or FAIL
    sys.stdout.flush()
    return exit_code


def summary_of(report: dict) -> dict:
    """The headline figures, flat, for a session that only wants numbers."""
    out = {"status": report["status"], "mode": report["mode"], "degraded": report["degraded"],
           "total_wall_s": report["total_wall_s"]}
    for name, st in report["stages"].items():
        mem = st.get("memory") or {}
        out[f"{name}_wall_s"] = st.get("wall_s")
        out[f"{name}_peak_allocated_gib"] = _gib(mem.get("peak_allocated_bytes"))
        res = st.get("result") or {}
        if name in ("grpo", "meml") and res:
            out[f"{name}_rollout_tokens_per_s"] = res["generation"]["tokens_per_s"]
            out[f"{name}_tokens_per_step_time_s"] = res["log"]["tokens_per_step_time_s"]
        if name == "eval" and res:
            out["eval_accuracy"] = res["accuracy"]
            out["eval_backend"] = res["backend"]
    return out


if __name__ == "__main__":
    sys.exit(main())
