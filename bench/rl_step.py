"""Time optimizer steps of GRPO and DAPO on a tiny model, in one process, and print the figures.

    python bench/rl_step.py                       # the default tiny setting's RL shape
    python bench/rl_step.py --model results/sft/qwen2/synth_gsm8k/Expert1-SFT/seed0 --steps 8

Prints, per algorithm, seconds per optimizer step (after one warm-up step), completions generated
per second (DAPO's extra sampling rounds included) and DAPO's mean number of rounds. Without
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
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from meml import paths  # noqa: E402
from meml.config import load_config  # noqa: E402


def sft_model_or_tiny(config: dict, tmp: Path, method: str) -> Path:
    """The Qwen ``method`` SFT model of the results folder (synthetic GSM8K, seed 0), else a random tiny model."""
    trained = paths.sft_dir(config["results_dir"], "qwen2", "synth_gsm8k", method, 0)
    if (trained / "run.json").exists():
        return trained
    from meml import stages

    print(f"no {method} model at {trained}: timing a randomly initialised tiny model", flush=True)
    cfg = {**config, "results_dir": str(tmp)}
    stages.make_world(cfg)
    return stages.build_tiny(cfg, "qwen2")


def gsm8k_rl_pool(config: dict, tmp: Path) -> list:
    """The synthetic GSM8K RL questions of the results folder, else of a world generated in ``tmp``."""
    from meml import stages
    from meml.data import load_records

    world = paths.world_dir(config["results_dir"])
    if not (world / "gsm8k" / "rl.jsonl").exists():
        world = paths.world_dir(tmp)
        if not (world / "gsm8k" / "rl.jsonl").exists():
            stages.make_world({**config, "results_dir": str(tmp)})
    return load_records("synth_gsm8k", "rl", world)


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


def time_algorithm(algorithm: str, model: Path, rows: list[dict], settings: dict, steps: int, tmp: Path) -> dict:
    from baselines.rl import build_trainer
    from baselines.rl_config import RLRunConfig

    run = RLRunConfig.for_algorithm(algorithm, {**settings, "steps": steps + 1, "save_steps": 10_000})
    timer = StepTimer()
    trainer = build_trainer(model, rows, "gsm8k", run, tmp / algorithm, [timer.callback])
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
    args = parser.parse_args()

    import torch

    from baselines.rl import rl_rows

    config = load_config(args.config)
    torch.set_num_threads(config["threads_per_job"])
    with tempfile.TemporaryDirectory(prefix="meml-bench-") as tmp:
        tmp = Path(tmp)
        model = Path(args.model) if args.model else sft_model_or_tiny(config, tmp, "Expert1-SFT")
        rows = rl_rows(gsm8k_rl_pool(config, tmp), [1], config["experts"]["prompts"])
        settings = {**config["rl"], "threads": config["threads_per_job"]}  # RLRunConfig applies rl.algorithms
        print(f"model {model}; {settings['prompts_per_step']} prompts x {settings['num_generations']} completions, "
              f"<= {settings['max_completion_length']} tokens, {config['threads_per_job']} thread(s)", flush=True)
        results = {}
        for algorithm in args.algorithms:
            results[algorithm] = time_algorithm(algorithm, model, rows, settings, args.steps, tmp)
            r = results[algorithm]
            print(f"{algorithm}: {r['s_per_step']:.2f} s/step, {r['rollouts_per_s']:.1f} rollouts/s, "
                  f"{r['rounds']:.2f} sampling rounds/step", flush=True)
        if "GRPO" in results and "DAPO" in results:
            print(f"dapo/grpo step-time ratio: {results['DAPO']['s_per_step'] / results['GRPO']['s_per_step']:.2f}")


if __name__ == "__main__":
    main()
