"""Size and CPU speed of the tiny Qwen2 / Llama models of a workflow config; prints figures, checks nothing.

    python bench/tiny_model_size_speed.py                          # the default tiny setting, 1 and 2 threads
    python bench/tiny_model_size_speed.py --config workflow/config/quick.yaml --threads 1 --repeats 5

Builds each configured family's tiny model as the workflow's ``build_tiny`` stage does (a tokenizer trained on
the configured synthetic world, the ``models.tiny`` shape, ``models.pretrain.seed``) in a temporary folder,
loads it back by path and prints its parameter counts. Then, per thread count, it times on the CPU (best of
``--repeats`` after one warm-up call):

- ``fwd+bwd``: one training forward and backward pass on ``--batch`` x ``--seq-len`` random tokens;
- ``forward``: the same batch without gradients;
- ``generate``: greedy generation of ``rl.max_completion_length`` new tokens (no early stop) for
  ``rl.prompts_per_step`` x ``rl.num_generations`` prompts of the RL pool under expert 0's prompt: one RL
  step's rollouts, done the transformers way.

Absolute milliseconds move with the machine's load (a 2-core box running other jobs can be many times slower
with 2 threads than with 1), so the ratios printed last are taken between figures of this one run: threads
against 1 thread, llama against qwen2, fwd+bwd against forward. ``--budget-s`` bounds the timing; what does
not fit is reported as skipped.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from meml.pipeline.settings import SYNTH, Settings, load_settings  # noqa: E402

MEASURES = ("fwd+bwd", "forward", "generate")


def build(settings: Settings, tmp: Path) -> tuple[Settings, dict[str, Path]]:
    """The workflow's tiny init model of every configured family, built under ``tmp``; the settings used."""
    from meml.pipeline import stages

    synthetic = [d for d in settings.datasets if d in SYNTH] or list(SYNTH)  # the tiny tokenizer's corpus
    local = replace(settings, results_dir=str(tmp), datasets=synthetic)
    stages.make_world(local)
    return local, {family: stages.build_tiny(local, family) for family in settings.models.families}


def rollout_prompts(settings: Settings, tokenizer, n: int):
    """``n`` RL-pool questions under expert 0's prompt, tokenized and left-padded as a generation batch."""
    from meml.pipeline import stages
    from meml.prompts import prompt_messages

    records = stages.rl_records(settings, settings.datasets[0])
    texts = [tokenizer.apply_chat_template(prompt_messages(records[i % len(records)].question,
                                                           settings.experts.prompts[0]),
                                           tokenize=False, add_generation_prompt=True) for i in range(n)]
    return tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)


class Timer:
    """Best-of-N wall times under one overall deadline."""

    def __init__(self, repeats: int, budget_s: float):
        self.repeats, self.deadline = repeats, time.perf_counter() + budget_s

    def best(self, call) -> tuple[float | None, int]:
        """Milliseconds of the fastest of ``repeats`` calls after a warm-up one (None: out of time) and the count."""
        if time.perf_counter() > self.deadline:
            return None, 0
        call()  # warm-up: allocations, kernel selection
        times = []
        for _ in range(self.repeats):
            if times and time.perf_counter() > self.deadline:
                break
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
        return min(times) * 1000, len(times)


def measure(model, tokenizer, settings: Settings, opt, timer: Timer, threads: int) -> dict[str, float | None]:
    import torch

    torch.set_num_threads(threads)
    x = torch.randint(0, len(tokenizer), (opt.batch, opt.seq_len), generator=torch.Generator().manual_seed(0))
    prompts = rollout_prompts(settings, tokenizer, settings.rl.prompts_per_step * settings.rl.num_generations)
    new_tokens = settings.rl.max_completion_length

    def train_pass():
        model.train()
        model(input_ids=x, labels=x).loss.backward()
        model.zero_grad(set_to_none=True)

    def forward():
        model.eval()
        with torch.no_grad():
            model(input_ids=x)

    def generate():
        model.eval()
        with torch.no_grad():
            model.generate(**prompts, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)

    out = {}
    for name, call in zip(MEASURES, (train_pass, forward, generate)):
        ms, n = timer.best(call)
        out[name] = ms
        shape = (f"{opt.batch}x{opt.seq_len}" if name != "generate"
                 else f"{prompts['input_ids'].shape[0]} prompts x {new_tokens} new tokens")
        if ms is None:
            print(f"[tiny] {model.config.model_type} {name} threads={threads}: skipped (time budget)", flush=True)
            continue
        extra = ""
        if name == "generate":
            extra = (f", {ms / new_tokens:.2f} ms a decoding step, "
                     f"{prompts['input_ids'].shape[0] * new_tokens / ms * 1000:,.0f} tokens/s")
        print(f"[tiny] {model.config.model_type} {name} {shape} threads={threads}: {ms:.1f} ms (best of {n}"
              f"{extra}; load avg {os.getloadavg()[0]:.1f})", flush=True)
    return out


def ratio(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or b is None or b == 0 else f"{a / b:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=None, help="workflow config (default: the tiny setting)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts to time")
    parser.add_argument("--batch", type=int, default=16, help="rows of the fwd+bwd and forward batch")
    parser.add_argument("--seq-len", type=int, default=96, help="tokens per row of that batch")
    parser.add_argument("--repeats", type=int, default=2, help="timed calls per figure after one warm-up")
    parser.add_argument("--budget-s", type=float, default=120.0, help="seconds of timing at most (after building)")
    opt = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from meml.tiny import count_parameters, folder_parameter_count

    hf_logging.disable_progress_bar()

    settings = load_settings(opt.config)
    tiny = settings.models.tiny
    print(f"[tiny] models.tiny: vocab<={tiny.vocab_size} hidden={tiny.hidden_size} layers={tiny.num_layers} "
          f"heads={tiny.num_heads}/{tiny.num_kv_heads} mlp={tiny.intermediate_size} "
          f"ctx={tiny.max_position_embeddings}", flush=True)
    threads_before = torch.get_num_threads()
    figures: dict[str, dict[int, dict]] = {}
    with tempfile.TemporaryDirectory(prefix="meml-bench-") as tmp:
        local, folders = build(settings, Path(tmp))
        models = {}
        for family, folder in folders.items():
            tokenizer = AutoTokenizer.from_pretrained(str(folder))
            model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
            models[family] = (model, tokenizer)
            n, body = count_parameters(model), count_parameters(model, include_embeddings=False)
            print(f"[tiny] {family}: vocab={len(tokenizer)} params={n:,} ({n / 1e6:.2f}M) non-embedding={body:,} "
                  f"embedding={n - body:,} (folder: {folder_parameter_count(folder):,})", flush=True)
        timer = Timer(opt.repeats, opt.budget_s)
        try:
            for family, (model, tokenizer) in models.items():
                figures[family] = {t: measure(model, tokenizer, local, opt, timer, t) for t in opt.threads}
        finally:
            torch.set_num_threads(threads_before)

    base_threads = opt.threads[0]
    print(f"\nmilliseconds, and time ratios of this run (> 1: slower): fwd+bwd over forward, and each figure over "
          f"the same at {base_threads} thread(s)")
    print(f"{'family':<7} {'threads':>7} " + " ".join(f"{m + ' ms':>12}" for m in MEASURES)
          + f" {'fwd+bwd/forward':>16}" + "".join(f" {m + '/' + str(base_threads) + 'thr':>17}" for m in MEASURES))
    for family, per_threads in figures.items():
        for t, f in per_threads.items():
            cells = " ".join(f"{'n/a' if f[m] is None else format(f[m], '.1f'):>12}" for m in MEASURES)
            vs = "".join(f" {ratio(f[m], per_threads[base_threads][m]):>17}" for m in MEASURES)
            print(f"{family:<7} {t:>7} {cells} {ratio(f['fwd+bwd'], f['forward']):>16}{vs}")
    if {"qwen2", "llama"} <= set(figures):
        for t in opt.threads:
            print(f"llama/qwen2 time ratio, {t} thread(s): " + ", ".join(
                f"{m} {ratio(figures['llama'][t][m], figures['qwen2'][t][m])}" for m in MEASURES))


if __name__ == "__main__":
    main()
