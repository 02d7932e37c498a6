"""Time MEML-GRPO optimizer steps against multi-expert GRPO steps with the same rollouts per step.

    python bench/step_overhead.py [--model DIR] [--steps 5] [--questions 4]

Both trainers start from the same model (default: the Qwen MoE-SFT model of the default results
folder, else a randomly initialised tiny model) and sample the same number of completions per step:
MEML takes Q questions x N experts x G samples, the baseline (MoE-SFT-GRPO) Q x N (question,
expert) prompts x G. MEML runs with mutual learning on (with the stop-gradient teacher term, read
from the policy loss's log-probs) and a hard-example buffer that fills about every other step. The last line is ``meml/grpo step-time ratio: X.XX`` (issue 4 target: <= 1.15).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.rl_step import StepTimer, gsm8k_rl_pool, sft_model_or_tiny, timed_run  # noqa: E402
from meml.pipeline.settings import load_settings  # noqa: E402


def _time(trainer, timer: StepTimer) -> float:
    trainer.train()
    return statistics.mean(timer.times[1:])  # the first step pays for warm-up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=None)
    parser.add_argument("--model", default=None)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per trainer (after one warm-up)")
    parser.add_argument("--questions", type=int, default=4, help="questions per MEML step (Q)")
    args = parser.parse_args()

    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from baselines.rl import rl_rows
    from meml.method.config import MEMLConfig
    from meml.method.trainer import MEMLGRPOTrainer, meml_rows
    from meml.rewards import make_reward_function
    from meml.training.grpo import SparsityGRPOTrainer

    settings = load_settings(args.config)
    torch.set_num_threads(settings.threads_per_job)
    prompts = settings.experts.prompts
    n = settings.n_experts
    with tempfile.TemporaryDirectory(prefix="meml-bench-") as tmp:
        tmp = Path(tmp)
        model_dir = Path(args.model) if args.model else sft_model_or_tiny(settings, tmp, "MoE-SFT")
        records = gsm8k_rl_pool(settings, tmp)
        g = settings.rl.num_generations
        reward = [make_reward_function("gsm8k")]
        print(f"model {model_dir}; {args.questions} questions x {n} experts x {g} samples = "
              f"{args.questions * n * g} completions per step, <= {settings.rl.max_completion_length} tokens",
              flush=True)

        def load():
            return (AutoModelForCausalLM.from_pretrained(str(model_dir)),
                    AutoTokenizer.from_pretrained(str(model_dir), padding_side="left"))

        base_run = timed_run(settings, "GRPO", args.steps + 1, prompts_per_step=args.questions * n)
        timer = StepTimer()
        model, tokenizer = load()
        baseline = SparsityGRPOTrainer(model=model, reward_funcs=reward, args=base_run.grpo_config(tmp / "grpo"),
                                       train_dataset=Dataset.from_list(rl_rows(records, range(n), prompts)),
                                       processing_class=tokenizer, callbacks=[timer.callback])
        grpo = _time(baseline, timer)

        meml_run = timed_run(settings, "GRPO", args.steps + 1, prompts_per_step=args.questions)
        # mutual learning with the teacher term; a buffer of Q items, entered always at a low bar (fills about
        # every other step); every other MEML setting at its default
        riel = MEMLConfig(lambda1=0.1, lambda2=0.1, teacher_term=True, buffer_capacity=max(1, args.questions),
                          buffer_k=g // 2, buffer_probability="always")
        timer = StepTimer()
        model, tokenizer = load()
        meml = MEMLGRPOTrainer(model=model, reward_funcs=reward, args=meml_run.grpo_config(tmp / "meml"),
                               train_dataset=Dataset.from_list(meml_rows(records)), processing_class=tokenizer,
                               callbacks=[timer.callback], meml=riel, expert_prompts=prompts)
        meml_time = _time(meml, timer)
        print(f"MoE-SFT-GRPO: {grpo:.2f} s/step; MEML-GRPO: {meml_time:.2f} s/step "
              f"({meml.sft_updates} buffer SFT updates in {args.steps + 1} steps)", flush=True)
        print(f"meml/grpo step-time ratio: {meml_time / grpo:.2f}")


if __name__ == "__main__":
    main()
