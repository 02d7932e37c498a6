"""Time optimizer steps of GRPO and DAPO on a tiny model, in one process, and print the figures.

    python bench/rl_step.py                       # the default tiny setting's RL shape
    python bench/rl_step.py --model results/sft/qwen2/synth_gsm8k/Expert1-SFT/seed0 --steps 8

Prints, per algorithm and path, seconds per optimizer step (after one warm-up step), completions generated
per second (DAPO's extra sampling rounds included) and DAPO's mean number of rounds. The paths, timed in one
process on the same model and questions: "trl" (TRL's generation and per-row forward: rl.decoder trl,
rl.shared_prompt_logprobs false) and "fast" (the tiny decoder and prompt-shared log-probs, the default); the
new/old step-time ratio is fast/trl (issue 15's target: <= 0.45). Without
--model it uses the Expert1-SFT model of the default results folder when one exists, else a
randomly initialised tiny model (whose rewards are all zero: DAPO then always hits its bound).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from meml import paths  # noqa: E402
from meml.pipeline.settings import Settings, load_settings  # noqa: E402


def _in(settings: Settings, tmp: Path) -> Settings:
    """``settings`` writing under ``tmp`` instead of its results folder."""
    return replace(settings, results_dir=str(tmp))


def sft_model_or_tiny(settings: Settings, tmp: Path, method: str) -> Path:
    """The Qwen ``method`` SFT model of the results folder (synthetic GSM8K, seed 0), else a random tiny model."""
    trained = paths.sft_dir(settings.results_dir, "qwen2", "synth_gsm8k", method)
    if (trained / "run.json").exists():
        return trained
    from meml.pipeline import stages

    print(f"no {method} model at {trained}: timing a randomly initialised tiny model", flush=True)
    stages.make_world(_in(settings, tmp))
    return stages.build_tiny(_in(settings, tmp), "qwen2")


def gsm8k_rl_pool(settings: Settings, tmp: Path) -> list:
    """The synthetic GSM8K RL questions of the results folder, else of a world generated in ``tmp``."""
    from meml.data import load_records
    from meml.pipeline import stages

    world = paths.world_dir(settings.results_dir)
    if not (world / "gsm8k" / "rl.jsonl").exists():
        world = paths.world_dir(tmp)
        if not (world / "gsm8k" / "rl.jsonl").exists():
            stages.make_world(_in(settings, tmp))
    return load_records("synth_gsm8k", "rl", world)


def timed_run(settings: Settings, algorithm: str, steps: int, **changes):
    """The workflow's ``algorithm`` run (seed 0, ``threads_per_job``) for ``steps`` steps and no checkpoint."""
    run = settings.rl.run(algorithm, 0, settings.threads_per_job)
    return replace(run, steps=steps, save_steps=10_000, **changes)


class StepTimer:
    """Callback recording wall time per optimizer step."""

    def __init__(self):
        from transformers import TrainerCallback

        timer = self

        class _Callback(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                timer.started = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                timer.times.append(time.perf_counter() - timer.started)

        self.times: list[float] = []
        self.callback = _Callback()


PATHS = {"trl": {"decoder": "trl", "shared_prompt_logprobs": False},
         "fast": {"decoder": "fast", "shared_prompt_logprobs": True}}


def time_algorithm(algorithm: str, model: Path, rows: list[dict], settings: Settings, steps: int, tmp: Path,
                   path: str = "fast") -> dict:
    from baselines.rl import build_trainer

    run = timed_run(settings, algorithm, steps + 1, **PATHS[path])
    timer = StepTimer()
    trainer = build_trainer(model, rows, "gsm8k", run, tmp / f"{algorithm}-{path}", [timer.callback])
    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # no per-step metric dicts in the figures
    trainer.train()
    times = timer.times[1:]  # the first step pays for warm-up
    rounds = trainer.state.log_history
    mean_rounds = statistics.mean(h.get("dynamic/rounds", 1.0) for h in rounds if "reward" in h)
    per_step = statistics.mean(times)
    return {"s_per_step": per_step, "rollouts_per_s": run.completions_per_step * mean_rounds / per_step,
            "rounds": mean_rounds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=None, help="workflow config (default: the tiny setting)")
    parser.add_argument("--model", default=None, help="model folder to train (default: see above)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per algorithm (after one warm-up)")
    parser.add_argument("--algorithms", nargs="+", default=["GRPO", "DAPO"])
    parser.add_argument("--paths", nargs="+", default=["trl", "fast"], choices=sorted(PATHS))
    args = parser.parse_args()

    import torch

    from baselines.rl import rl_rows

    settings = load_settings(args.config)
    torch.set_num_threads(settings.threads_per_job)
    with tempfile.TemporaryDirectory(prefix="meml-bench-") as tmp:
        tmp = Path(tmp)
        model = Path(args.model) if args.model else sft_model_or_tiny(settings, tmp, "Expert1-SFT")
        rows = rl_rows(gsm8k_rl_pool(settings, tmp), [1], settings.experts.prompts)
        rl = settings.rl  # each algorithm's run adds its presets and rl.algorithms.<name>
        print(f"model {model}; {rl.prompts_per_step} prompts x {rl.num_generations} completions, "
              f"<= {rl.max_completion_length} tokens, {settings.threads_per_job} thread(s)", flush=True)
        results = {}
        for algorithm in args.algorithms:
            for path in args.paths:
                r = results[algorithm, path] = time_algorithm(algorithm, model, rows, settings, args.steps, tmp, path)
                print(f"{algorithm} [{path}]: {r['s_per_step']:.2f} s/step, {r['rollouts_per_s']:.1f} rollouts/s, "
                      f"{r['rounds']:.2f} sampling rounds/step", flush=True)
            if {"trl", "fast"} <= set(args.paths):
                ratio = results[algorithm, "fast"]["s_per_step"] / results[algorithm, "trl"]["s_per_step"]
                print(f"{algorithm}: step-time ratio fast/trl (new/old) {ratio:.2f}", flush=True)
        for path in args.paths:
            if ("GRPO", path) in results and ("DAPO", path) in results:
                ratio = results["DAPO", path]["s_per_step"] / results["GRPO", path]["s_per_step"]
                print(f"dapo/grpo step-time ratio [{path}]: {ratio:.2f}")

if __name__ == "__main__":
    main()
