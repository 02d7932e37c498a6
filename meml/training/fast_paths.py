"""The tiny models' fast paths, plugged into TRL: rollouts through ``rollout_func`` and prompt-shared log-probs.

TRL's documented (experimental) ``rollout_func`` argument replaces its generation: :func:`rollout_function`
returns one that tokenizes the prompts as TRL does and samples them with :func:`meml.tiny.decoder.sample`.
:func:`shared_logprobs_usable` says when :class:`meml.training.grpo.SparsityGRPOTrainer` may answer TRL's
log-prob call with :func:`meml.tiny.decoder.prompt_shared_logps` instead of the per-row forward. Both apply only
to models the decoder supports, on one process, without vLLM, and without sampling options the decoder lacks
(min-p, repetition penalty, extra generation kwargs); 'auto' also only on the CPU. Everything else (hub models on
GPUs, vLLM) keeps TRL's path unchanged.
"""

from __future__ import annotations

import logging

from meml.tiny.decoder import SamplingSettings, sample, unsupported_reason

log = logging.getLogger(__name__)


def fast_path_obstacle(model, args, compute=None) -> str | None:
    """Why the decoder cannot stand in for TRL's generation and forward here (None: it can)."""
    reason = unsupported_reason(model)
    if reason:
        return reason
    if compute is not None and compute.vllm.rollouts:
        return "vLLM rollouts are on"
    if compute is not None and compute.num_processes > 1:
        return "several training processes"
    if args.min_p not in (None, 0.0) or args.repetition_penalty not in (None, 1.0) or args.generation_kwargs:
        return "min_p, repetition_penalty or generation_kwargs are set (the decoder applies temperature/top-k/top-p)"
    return None


def auto_obstacle(model, args, compute=None) -> str | None:
    """Why 'auto' keeps TRL's paths: :func:`fast_path_obstacle`, or a run that is not on the CPU (the tiny setting's
    home; hub models on GPUs keep transformers' and vLLM's kernels)."""
    if compute is not None and compute.device != "cpu":
        return f"compute.device is {compute.device}"
    return fast_path_obstacle(model, args, compute)


def resolve_decoder(mode: str, model, args, compute=None) -> str:
    """``rl.decoder`` resolved for ``model``: 'fast', 'exact' or 'trl'; an explicit mode that cannot run raises."""
    obstacle = auto_obstacle(model, args, compute) if mode == "auto" else fast_path_obstacle(model, args, compute)
    if mode == "auto":
        if obstacle:
            log.info("rollouts through TRL's generation (the tiny decoder does not apply: %s)", obstacle)
        return "trl" if obstacle else "fast"
    if mode in ("fast", "exact") and obstacle:
        raise ValueError(f"rl.decoder is {mode!r} but the tiny decoder cannot run this model: {obstacle}; "
                         "use rl.decoder 'auto' or 'trl'")
    return mode


def sampling_settings(args) -> SamplingSettings:
    """The decoder's view of a ``GRPOConfig``'s sampling options."""
    return SamplingSettings(temperature=args.temperature, top_k=args.top_k or None,
                            top_p=1.0 if args.top_p is None else args.top_p)


def rollout_function(exact: bool):
    """A TRL ``rollout_func``: one completion per prompt row (TRL passes each group's prompt G times)."""

    def rollout(prompts: list, trainer) -> dict:
        prompt_ids, _, _ = trainer._tokenize_prompts(prompts)
        model = trainer.accelerator.unwrap_model(trainer.model)
        args = trainer.args
        completions = sample(model, prompt_ids, args.max_completion_length, trainer.eos_token_ids,
                             trainer._tokenizer.pad_token_id, sampling_settings(args), exact=exact)
        return {"prompt_ids": prompt_ids, "completion_ids": completions, "logprobs": None}

    rollout.exact = exact
    return rollout
