"""Evaluation through lm-evaluation-harness: generative tasks built on the shared answer extractor.

One custom ``generate_until`` task per dataset reads the normalized test records from a JSON Lines
file; its ``process_results`` calls :func:`meml.rewards.accuracy_reward`, the very function the RL
reward uses, so training and evaluation agree on what is correct by construction. Decoding is
greedy, through the model's chat template, with the inference expert's prompt as the system
instruction. One model load serves every inference expert.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

from meml.io import write_json_atomic, write_jsonl_atomic
from meml.records import Record
from meml.rewards import STOP_SEQUENCES, accuracy_reward, budget_counts, extract_answer

log = logging.getLogger(__name__)

DOC_FIELDS = ("id", "task", "question", "answer", "options", "slice")


def write_task_docs(records: Sequence[Record], path: str | Path) -> Path:
    """Test records as the lm-eval task's documents (one JSON object per line)."""
    rows = [{**{k: getattr(r, k) for k in DOC_FIELDS}, "task": r.dataset} for r in records]  # grading by dataset
    return write_jsonl_atomic(path, rows)


def _process_results(doc: dict, results: list[str]) -> dict:
    completion = results[0] if results else ""
    return {"exact_match": accuracy_reward(doc["task"], completion, doc["answer"], doc["options"] or None)}


def task_config(name: str, docs_path: str | Path, max_new_tokens: int, temperature: float | None = None,
                repeats: int = 1) -> dict:
    """An lm-eval task config (as a dict) for one dataset's documents.

    Greedy by default; with ``temperature`` the model samples (plain temperature sampling, no top-k or
    top-p truncation, as the RL rollouts sample) and lm-eval draws ``repeats`` completions per document.
    Generation stops at :data:`meml.rewards.STOP_SEQUENCES` (an invented next turn), where the shared
    reward also cuts a completion, so a stopped evaluation and a full RL rollout are graded alike.
    """
    until = list(STOP_SEQUENCES)
    if temperature is None:
        generation = {"until": until, "do_sample": False, "temperature": 0.0, "max_gen_toks": max_new_tokens}
    else:
        generation = {"until": until, "do_sample": True, "temperature": float(temperature), "top_k": 0,
                      "top_p": 1.0, "max_gen_toks": max_new_tokens}
    return {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(Path(docs_path).resolve())}},
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_text": "{{question}}",
        "doc_to_target": "{{answer}}",
        "target_delimiter": "",
        "process_results": _process_results,
        "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}],
        "generation_kwargs": generation,
        "repeats": repeats,
        "num_fewshot": 0,
        "metadata": {"version": 1.0},
    }


@functools.lru_cache(maxsize=1)
def decoder_lm_class():
    """lm-eval's ``HFLM`` whose ``_model_generate`` runs :func:`meml.tiny.decoder.sample` (fast mode: each distinct
    context prefilled once, finished rows leave the batch; greedy equals transformers' greedy, sampling draws from
    the same distribution by inverse CDF). lm-eval still builds the requests, decodes, cuts at the stop sequences
    and scores; generation options the decoder lacks fall back to transformers' ``generate``."""
    import torch
    from lm_eval.models.huggingface import HFLM

    from meml.tiny.decoder import SamplingSettings, sample

    class DecoderHFLM(HFLM):
        def _model_generate(self, context, max_length, stop, **generation_kwargs):
            known = {"attention_mask", "do_sample", "temperature", "top_k", "top_p"}
            if set(generation_kwargs) - known:
                return super()._model_generate(context, max_length, stop, **generation_kwargs)
            mask = generation_kwargs.get("attention_mask")
            mask = torch.ones_like(context, dtype=torch.bool) if mask is None else mask.bool()
            defaults = self.model.generation_config
            temperature = generation_kwargs.get("temperature", 0.0)
            do_sample = generation_kwargs.get("do_sample")
            do_sample = bool(defaults.do_sample) if do_sample is None and temperature else bool(do_sample)
            settings = SamplingSettings(
                temperature=temperature if do_sample else 1.0,
                top_k=generation_kwargs.get("top_k", defaults.top_k) or None,
                top_p=generation_kwargs.get("top_p", defaults.top_p) or 1.0)
            prompts = [row[keep].tolist() for row, keep in zip(context, mask)]
            eos = self.model.generation_config.eos_token_id
            eos = [eos] if isinstance(eos, int) else list(eos or [])
            eos = sorted({*eos, self.tokenizer.eos_token_id} - {None})
            new_tokens = max_length - context.shape[1]
            rows = sample(self.model, prompts, new_tokens, eos, self.tokenizer.pad_token_id, settings,
                          do_sample=do_sample, exact=False)
            out = context.new_full((context.shape[0], new_tokens), self.tokenizer.pad_token_id)
            for index, row in enumerate(rows):
                out[index, :len(row)] = torch.tensor(row, dtype=out.dtype)
            return torch.cat([context, out], dim=1)

    return DecoderHFLM


def load_lm(model_path: str | Path, batch_size: int, compute=None, seed: int = 0, decoder: str = "auto"):
    """The lm-eval model of ``compute.eval_backend``: ``HFLM`` (default: CPU, fp32) or lm-eval's ``VLLM``.

    ``decoder`` (``eval.decoder``): 'fast' generates through :func:`decoder_lm_class`, 'hf' through transformers'
    ``generate``, 'auto' picks 'fast' for a model :mod:`meml.tiny.decoder` supports on the HF backend on the CPU."""
    from meml.training.compute import ComputeConfig

    compute = compute or ComputeConfig()
    if compute.eval_backend == "vllm":
        from importlib.util import find_spec

        from meml.vllm_backend import vllm_lm_class

        if find_spec("vllm") is None:
            raise ImportError("compute.eval_backend is vllm but vllm is not installed: pip install 'meml-grpo[gpu]'")
        # every GPU the job declares: tensor parallel inside a replica, data parallel (ray actors) across
        data_parallel = max(1, compute.gpus_per_eval_job // compute.vllm.tensor_parallel_size)
        lm = vllm_lm_class()(pretrained=str(model_path), dtype=compute.eval_dtype(), batch_size="auto",
                             seed=seed, gpu_memory_utilization=compute.eval_gpu_memory_utilization,
                             max_model_len=compute.eval_max_model_len,
                             tensor_parallel_size=compute.vllm.tensor_parallel_size,
                             data_parallel_size=data_parallel)
        lm.sampling_seed = seed
        return lm
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=str(model_path), batch_size=batch_size, device=compute.device, dtype=compute.eval_dtype())
    if decoder == "hf":
        return lm
    from meml.tiny.decoder import unsupported_reason

    obstacle = unsupported_reason(lm.model)
    if decoder == "auto" and compute.device != "cpu":
        return lm  # GPUs keep transformers' kernels
    if obstacle and decoder == "fast":
        raise ValueError(f"eval.decoder is 'fast' but the tiny decoder cannot run {model_path}: {obstacle}")
    if not obstacle:
        lm.__class__ = decoder_lm_class()  # the same loaded model and tokenizer, generating through the decoder
    return lm


@contextlib.contextmanager
def loaded_lm(model_path: str | Path, batch_size: int, compute=None, seed: int = 0, decoder: str = "auto",
              threads: int | None = None):
    """:func:`load_lm` for the length of a ``with`` block (torch on ``threads`` CPU threads when given): one load
    serves every prompt of a job, and the vLLM backend's data-parallel replicas are freed at the block's end."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    lm = load_lm(model_path, batch_size, compute, seed=seed, decoder=decoder)
    try:
        yield lm
    finally:
        close = getattr(lm, "close", None)
        if callable(close):
            close()


@contextlib.contextmanager
def without_environment_report():
    """lm-eval's ``simple_evaluate`` ends by adding an environment report to its results (``add_env_info``: torch's
    ``collect_env`` starts pip and GPU-query subprocesses, about a second a call) that this suite never reads; skip
    it. Everything else, the scores and samples included, is lm-eval's own."""
    from lm_eval import evaluator

    if not hasattr(evaluator, "add_env_info"):
        raise RuntimeError("lm_eval.evaluator.add_env_info is gone: this lm-eval version is not supported "
                           "(meml/evaluation.py without_environment_report)")
    original = evaluator.add_env_info
    evaluator.add_env_info = lambda storage: None
    try:
        yield
    finally:
        evaluator.add_env_info = original


def evaluate_model(model_path: str | Path, docs_path: str | Path, task_name: str,
                   system_prompts: Mapping[int | str, str | None], max_new_tokens: int = 96, batch_size: int = 64,
                   threads: int = 1, compute=None, decoder: str = "auto") -> dict[int | str, tuple[dict, list[dict]]]:
    """Greedy evaluation of one model under each inference expert prompt (None: no system message), one load.

    Returns ``{expert: (summary, samples)}`` (:func:`evaluate_prompts`).
    """
    with loaded_lm(model_path, batch_size, compute, decoder=decoder, threads=threads) as lm:
        return evaluate_prompts(lm, docs_path, task_name, system_prompts, max_new_tokens)


def evaluate_prompts(lm, docs_path: str | Path, task_name: str, system_prompts: Mapping[int | str, str | None],
                     max_new_tokens: int = 96) -> dict[int | str, tuple[dict, list[dict]]]:
    """Greedy evaluation of a loaded lm-eval model under each system prompt.

    Returns ``{expert: (summary, samples)}``: summary holds accuracy (overall and per slice) and
    lm-eval's own metric; samples hold one row per test item with the completion and its verdict.
    """
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_defaults=False)
    out = {}
    for expert, prompt in system_prompts.items():
        cut_before = sum(budget_counts().values())
        with without_environment_report():
            results = simple_evaluate(
                model=lm,
                tasks=[task_config(task_name, docs_path, max_new_tokens)],
                apply_chat_template=True,
                system_instruction=prompt,
                log_samples=True,
                task_manager=manager,
                random_seed=0, numpy_random_seed=0, torch_random_seed=0, fewshot_random_seed=0,
                bootstrap_iters=0,
            )
        samples = []
        for s in sorted(results["samples"][task_name], key=lambda s: s["doc_id"]):
            doc = s["doc"]
            completion = s["resps"][0][0] if s["resps"] and s["resps"][0] else ""
            samples.append({
                "id": doc["id"], "slice": doc["slice"], "answer": doc["answer"],
                "completion": completion,
                "extracted": extract_answer(doc["task"], completion, doc["options"] or None),
                "correct": float(s["exact_match"]),
            })
        summary = summarize(samples)
        summary["lm_eval_exact_match"] = results["results"][task_name].get("exact_match,none")
        summary["reward_over_budget"] = sum(budget_counts().values()) - cut_before  # answers the budget cut off
        summary["system_prompt"] = prompt
        out[expert] = (summary, samples)
        log.info("%s expert %s: accuracy %.3f on %d items", task_name, expert, summary["accuracy"], summary["n"])
    return out


def sample_model(model_path: str | Path, docs_path: str | Path, task_name: str, system_prompt: str, samples: int,
                 temperature: float, max_new_tokens: int = 96, batch_size: int = 64, threads: int = 1,
                 seed: int = 0, compute=None, decoder: str = "auto") -> list[dict]:
    """``samples`` sampled completions per test item of one model under one system prompt (:func:`sample_prompt`)."""
    with loaded_lm(model_path, batch_size, compute, seed=seed, decoder=decoder, threads=threads) as lm:
        return sample_prompt(lm, docs_path, task_name, system_prompt, samples, temperature, max_new_tokens, seed)


def sample_prompt(lm, docs_path: str | Path, task_name: str, system_prompt: str | None, samples: int,
                  temperature: float, max_new_tokens: int = 96, seed: int = 0) -> list[dict]:
    """``samples`` sampled completions per test item of a loaded lm-eval model under one system prompt.

    lm-eval's task option ``repeats`` sends every document ``samples`` times; the HF backend samples
    each copy independently (``do_sample``, ``temperature``). lm-eval seeds Python, NumPy and torch
    from ``seed`` before it runs, so on CPU the same seed, model, documents and batch size give the
    same completions; the vLLM backend seeds every request from ``seed`` (:mod:`meml.vllm_backend`).
    Each completion is scored with :func:`meml.rewards.accuracy_reward`.
    Returns one row per item in document order: ``{"id", "slice", "answer", "completions",
    "extracted", "correct"}`` with lists of length ``samples`` (correct: 0 or 1).
    """
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    if samples < 1:
        raise ValueError(f"sample_model: samples must be at least 1, got {samples}")
    if hasattr(lm, "sampling_seed"):
        lm.sampling_seed = seed
    with without_environment_report():
        results = simple_evaluate(
            model=lm,
            tasks=[task_config(task_name, docs_path, max_new_tokens, temperature=temperature, repeats=samples)],
            apply_chat_template=True,
            system_instruction=system_prompt,
            log_samples=True,
            task_manager=TaskManager(include_defaults=False),
            random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=seed,
            bootstrap_iters=0,
        )
    rows = []
    for s in sorted(results["samples"][task_name], key=lambda s: s["doc_id"]):
        doc = s["doc"]
        completions = list(s["resps"][0]) if s["resps"] else []  # one request per document, `samples` responses
        if len(completions) != samples:
            raise RuntimeError(f"{task_name}: lm-eval returned {len(completions)} completions for item {doc['id']}, "
                               f"expected {samples}")
        options = doc["options"] or None
        rows.append({
            "id": doc["id"], "slice": doc["slice"], "answer": doc["answer"],
            "completions": completions,
            "extracted": [extract_answer(doc["task"], c, options) for c in completions],
            "correct": [int(accuracy_reward(doc["task"], c, doc["answer"], options)) for c in completions],
        })
    log.info("%s: %d items x %d samples at temperature %g, accuracy %.3f", task_name, len(rows), samples,
             temperature, sum(sum(r["correct"]) for r in rows) / max(1, len(rows) * samples))
    return rows


def summarize(samples: Sequence[dict]) -> dict:
    """Accuracy over all samples and per slice (when slices exist)."""
    by_slice = defaultdict(list)
    for s in samples:
        if s.get("slice"):
            by_slice[s["slice"]].append(s["correct"])
    n = len(samples)
    return {
        "n": n,
        "accuracy": sum(s["correct"] for s in samples) / n if n else float("nan"),
        "accuracy_by_slice": {k: sum(v) / len(v) for k, v in sorted(by_slice.items())},
    }


def write_result(result_path: str | Path, samples_path: str | Path, summary: dict, samples: list[dict],
                 identity: dict, provenance: dict) -> None:
    """Write one evaluation's result file and its per-sample outputs, each atomically."""
    write_jsonl_atomic(samples_path, samples)
    write_json_atomic(result_path, {**identity, **summary, "samples_file": Path(samples_path).name, **provenance})
