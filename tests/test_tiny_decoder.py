"""The tiny decoder (meml.tiny.decoder) against transformers' generate and TRL's forward, and its TRL plumbing."""

import copy

import pytest
import torch

from meml.tiny import decoder
from meml.tiny.decoder import SamplingSettings

FAMILIES = ("qwen2", "llama")
TEXTS = ["Tom has 3 apples and buys 5 more. How many apples?", "Is the sky green?", "7 plus 8", "Ann has 3 pens."]


@pytest.fixture(scope="module", params=FAMILIES)
def model_and_tokenizer(request):
    """A randomly initialised tiny model of each family (GQA: 4 heads over 2 key/value heads)."""
    from meml.tiny import build_model, train_tokenizer

    corpus = [f"{t} The answer is {i}." for i, t in enumerate(TEXTS * 30)]
    tokenizer = train_tokenizer(corpus, request.param, vocab_size=300)
    tokenizer.padding_side = "left"
    model = build_model(request.param, tokenizer, hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2,
                        intermediate_size=128, max_position_embeddings=256, seed=3)
    return model, tokenizer


def _prompts(tokenizer):
    return [tokenizer(t, add_special_tokens=False)["input_ids"] for t in TEXTS]


def _hf_generate(model, tokenizer, prompts, eos, max_new_tokens, do_sample, seed, **sampling):
    """transformers' generate on the left-padded batch, cut after each row's first EOS (as TRL cuts it)."""
    from transformers import GenerationConfig

    batch = tokenizer.pad({"input_ids": prompts}, return_tensors="pt")
    sampling = {"top_k": 0, **sampling}  # as TRL sets it (transformers' own default is 50)
    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=do_sample, pad_token_id=tokenizer.pad_token_id,
                              eos_token_id=eos, **sampling)
    torch.manual_seed(seed)
    with torch.no_grad():
        out = model.generate(**batch, generation_config=config)[:, batch["input_ids"].shape[1]:]
    rows = []
    for row in out.tolist():
        cut = next((i + 1 for i, t in enumerate(row) if t in eos), len(row))
        rows.append(row[:cut])
    return rows


def _frequent_token(rows):
    """A token that occurs a few positions into the first row: made an EOS so that rows end at different steps."""
    return rows[0][min(3, len(rows[0]) - 1)]


@pytest.mark.parametrize("do_sample", [False, True])
def test_exact_mode_equals_transformers_generate(model_and_tokenizer, do_sample):
    model, tokenizer = model_and_tokenizer
    prompts = _prompts(tokenizer) * 2
    eos = [tokenizer.eos_token_id]
    first = _hf_generate(model, tokenizer, prompts, eos, 24, do_sample, seed=5)
    eos = [tokenizer.eos_token_id, _frequent_token(first)]  # rows now finish at different steps
    expected = _hf_generate(model, tokenizer, prompts, eos, 24, do_sample, seed=5)
    assert len({len(r) for r in expected}) > 1, "the test needs rows that end at different steps"
    torch.manual_seed(5)
    got = decoder.sample(model, prompts, 24, eos, tokenizer.pad_token_id, do_sample=do_sample, exact=True)
    assert got == expected


def test_exact_mode_with_temperature_top_k_top_p(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    prompts = _prompts(tokenizer)
    eos = [tokenizer.eos_token_id]
    expected = _hf_generate(model, tokenizer, prompts, eos, 16, True, seed=2, temperature=0.7, top_k=20, top_p=0.9)
    torch.manual_seed(2)
    got = decoder.sample(model, prompts, 16, eos, tokenizer.pad_token_id, SamplingSettings(0.7, 20, 0.9), exact=True)
    assert got == expected


def test_fast_greedy_equals_exact_greedy(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    prompts = [p for p in _prompts(tokenizer) for _ in range(3)]  # repeated prompts are prefilled once
    eos = [tokenizer.eos_token_id, _frequent_token(_hf_generate(model, tokenizer, prompts, [0], 8, False, 0))]
    exact = decoder.sample(model, prompts, 20, eos, tokenizer.pad_token_id, do_sample=False, exact=True)
    fast = decoder.sample(model, prompts, 20, eos, tokenizer.pad_token_id, do_sample=False, exact=False)
    assert fast == exact


def test_fast_sampling_draws_from_the_model_distribution(model_and_tokenizer):
    """First tokens of 4,000 rows of one prompt: frequencies match softmax(logits / T) within sampling error."""
    model, tokenizer = model_and_tokenizer
    prompt = _prompts(tokenizer)[0]
    with torch.no_grad():
        probs = (model(torch.tensor([prompt])).logits[0, -1] / 0.5).softmax(-1)
    n = 4000
    generator = torch.Generator().manual_seed(0)
    rows = decoder.sample(model, [prompt] * n, 1, [tokenizer.eos_token_id], tokenizer.pad_token_id,
                          SamplingSettings(temperature=0.5), exact=False, generator=generator)
    counts = torch.bincount(torch.tensor([r[0] for r in rows]), minlength=probs.numel()).float()
    top = probs.argsort(descending=True)[:5]
    standard_error = (probs[top] * (1 - probs[top]) / n).sqrt()
    assert ((counts[top] / n - probs[top]).abs() <= 4 * standard_error + 1e-3).all()
    assert len({tuple(r) for r in rows}) > 1


def test_fast_mode_rows_end_at_eos_or_the_cap(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    prompts = _prompts(tokenizer) * 4
    eos = [tokenizer.eos_token_id, _frequent_token(_hf_generate(model, tokenizer, prompts, [0], 8, False, 0))]
    rows = decoder.sample(model, prompts, 12, eos, tokenizer.pad_token_id, exact=False,
                          generator=torch.Generator().manual_seed(1))
    assert len(rows) == len(prompts)
    for row in rows:
        assert 1 <= len(row) <= 12
        assert all(t not in eos for t in row[:-1])
        assert row[-1] in eos or len(row) == 12


def test_sampling_settings_match_transformers_processors():
    from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    logits = torch.randn(5, 50, generator=torch.Generator().manual_seed(0))
    expected = TopPLogitsWarper(0.8)(None, TopKLogitsWarper(10)(None, TemperatureLogitsWarper(0.7)(None, logits)))
    assert torch.equal(SamplingSettings(0.7, 10, 0.8).process(logits), expected)
    assert torch.equal(SamplingSettings().process(logits), logits)


def _grpo_batch(vocab: int, groups=3, size=4, prompt=12, completion=9, seed=0):
    """Left-padded prompts (repeated per group, different padding per group), right-padded completions."""
    g = torch.Generator().manual_seed(seed)
    prompts = torch.randint(5, vocab, (groups, prompt), generator=g).repeat_interleave(size, 0)
    prompt_mask = torch.ones_like(prompts)
    for group in range(groups):
        prompt_mask[group * size:(group + 1) * size, :2 * group] = 0
    completions = torch.randint(5, vocab, (groups * size, completion), generator=g)
    completion_mask = torch.ones_like(completions)
    for row in range(groups * size):
        completion_mask[row, int(torch.randint(1, completion + 1, (1,), generator=g)):] = 0
    return torch.cat([prompts, completions], 1), torch.cat([prompt_mask, completion_mask], 1), completion


def test_prompt_shared_logps_and_gradients_equal_trls_forward(model_and_tokenizer):
    from trl.trainer.utils import add_fused_lm_head

    model, _ = model_and_tokenizer
    model = copy.deepcopy(model).train()
    reference = copy.deepcopy(model)
    add_fused_lm_head(reference, temperature=0.7, outputs=("log_probs", "entropy"))
    input_ids, attention_mask, keep = _grpo_batch(model.config.vocab_size)
    labels = input_ids.masked_fill(attention_mask == 0, -100)
    labels[:, :-keep] = -100
    out = reference(input_ids=input_ids, attention_mask=attention_mask, labels=labels, fused_lm_head=True)
    logps, entropy = decoder.prompt_shared_logps(model, input_ids, attention_mask, keep, temperature=0.7,
                                                 compute_entropy=True)
    torch.testing.assert_close(logps, out.log_probs[:, -keep:], atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(entropy, out.entropy[:, -keep:], atol=2e-5, rtol=1e-5)
    weights = torch.randn(logps.shape, generator=torch.Generator().manual_seed(1))
    (logps * weights).sum().backward()
    (out.log_probs[:, -keep:] * weights).sum().backward()
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-5, rtol=1e-4, msg=name)


def test_unsupported_models_are_named():
    from types import SimpleNamespace

    assert "gpt2" in decoder.unsupported_reason(SimpleNamespace(config=SimpleNamespace(model_type="gpt2")))
    rope = SimpleNamespace(model_type="llama", rope_parameters={"rope_type": "llama3"})
    assert "llama3" in decoder.unsupported_reason(SimpleNamespace(config=rope))


# ----------------------------------------------------------------------------------------- through TRL


def _trainer(model_dir, tmp_path, name, **run_settings):
    from baselines.rl import build_trainer
    from meml.training.rl_config import RLConfig

    run = RLConfig(algorithm="GRPO", prompts_per_step=2, num_generations=4, max_completion_length=10,
                   **run_settings)
    rows = [{"prompt": f"You are Expert 0. Solve step by step. Question {i}: Tom has {i} apples.", "answer": str(i)}
            for i in range(4)]
    trainer = build_trainer(model_dir, rows, "gsm8k", run, tmp_path / name)
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1
    return trainer, rows


def _round(trainer, rows, seed=0):
    torch.manual_seed(seed)
    return trainer._generate_and_score_completions([dict(rows[i]) for i in (0, 1) for _ in range(4)])


@pytest.mark.slow
def test_trainer_paths_by_setting(tiny_model_dir, tmp_path):
    fast, _ = _trainer(tiny_model_dir, tmp_path, "fast")
    assert fast.rollout_func is not None and not fast.rollout_func.exact and fast.shared_prompt_logprobs
    trl, _ = _trainer(tiny_model_dir, tmp_path, "trl", decoder="trl", shared_prompt_logprobs=False)
    assert trl.rollout_func is None and not trl.shared_prompt_logprobs


@pytest.mark.slow
def test_exact_decoder_rollouts_equal_trls_generation(tiny_model_dir, tmp_path):
    exact, rows = _trainer(tiny_model_dir, tmp_path, "exact", decoder="exact")
    trl, _ = _trainer(tiny_model_dir, tmp_path, "trl", decoder="trl")
    a, b = _round(exact, rows), _round(trl, rows)
    assert torch.equal(a["completion_ids"], b["completion_ids"])
    assert torch.equal(a["prompt_ids"], b["prompt_ids"])


@pytest.mark.slow
def test_shared_logprobs_give_trls_loss_and_gradients(tiny_model_dir, tmp_path):
    shared, rows = _trainer(tiny_model_dir, tmp_path, "shared", decoder="trl")
    plain, _ = _trainer(tiny_model_dir, tmp_path, "plain", decoder="trl", shared_prompt_logprobs=False)
    batch = _round(plain, rows)
    calls = []
    original = decoder.prompt_shared_logps

    def counted(*args, **kwargs):
        calls.append(args[1].shape)
        return original(*args, **kwargs)

    decoder.prompt_shared_logps, saved = counted, decoder.prompt_shared_logps
    try:
        losses = {}
        for name, trainer in (("shared", shared), ("plain", plain)):
            trainer.model.zero_grad()
            loss = trainer.compute_loss(trainer.model, dict(batch))
            loss.backward()
            losses[name] = (loss.detach(), [p.grad.clone() for p in trainer.model.parameters()])
    finally:
        decoder.prompt_shared_logps = saved
    assert calls, "the shared path was not taken"
    torch.testing.assert_close(losses["shared"][0], losses["plain"][0], atol=1e-6, rtol=1e-5)
    for a, b in zip(losses["shared"][1], losses["plain"][1]):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)


def test_explicit_decoder_that_cannot_run_is_refused():
    from types import SimpleNamespace

    from meml.training.compute import ComputeConfig
    from meml.training.fast_paths import resolve_decoder

    model = SimpleNamespace(config=SimpleNamespace(model_type="gpt2"))
    args = SimpleNamespace(min_p=None, repetition_penalty=1.0, generation_kwargs=None)
    assert resolve_decoder("auto", model, args) == "trl"
    with pytest.raises(ValueError, match="rl.decoder is 'fast'.*gpt2"):
        resolve_decoder("fast", model, args)
    assert resolve_decoder("trl", model, args, ComputeConfig()) == "trl"


def test_auto_uses_the_decoder_on_the_cpu_only(model_and_tokenizer):
    from types import SimpleNamespace

    from meml.training.compute import ComputeConfig
    from meml.training.fast_paths import resolve_decoder

    model, _ = model_and_tokenizer
    args = SimpleNamespace(min_p=None, repetition_penalty=1.0, generation_kwargs=None)
    assert resolve_decoder("auto", model, args, ComputeConfig()) == "fast"
    assert resolve_decoder("auto", model, args, ComputeConfig(device="cuda")) == "trl"  # hub models on GPUs
    assert resolve_decoder("auto", model, SimpleNamespace(**{**vars(args), "repetition_penalty": 1.2})) == "trl"
    assert resolve_decoder("exact", model, args, ComputeConfig(device="cuda")) == "exact"  # asked for explicitly


# ----------------------------------------------------------------------------------------- through lm-eval


@pytest.mark.slow
def test_lm_eval_greedy_answers_are_the_same_through_the_decoder(tiny_model_dir, small_world, tmp_path):
    from meml.data import load_records
    from meml.evaluation import evaluate_model, load_lm, write_task_docs

    assert type(load_lm(tiny_model_dir, 4)).__name__ == "DecoderHFLM"
    assert type(load_lm(tiny_model_dir, 4, decoder="hf")).__name__ == "HFLM"
    docs = write_task_docs(load_records("synth_gsm8k", "test", small_world)[:6], tmp_path / "docs.jsonl")
    prompts = {0: "You are Expert 0. Solve step by step."}
    runs = {name: evaluate_model(tiny_model_dir, docs, "meml_test_decoder", prompts, max_new_tokens=12,
                                 batch_size=4, decoder=name)[0] for name in ("hf", "fast")}
    assert [s["completion"] for s in runs["fast"][1]] == [s["completion"] for s in runs["hf"][1]]
    assert runs["fast"][0]["accuracy"] == runs["hf"][0]["accuracy"]


@pytest.mark.slow
def test_lm_eval_sampling_through_the_decoder_is_seeded(tiny_model_dir, small_world, tmp_path):
    from meml.data import load_records
    from meml.evaluation import sample_model, write_task_docs

    docs = write_task_docs(load_records("synth_gsm8k", "test", small_world)[:3], tmp_path / "docs.jsonl")

    def run(seed):
        return sample_model(tiny_model_dir, docs, "meml_test_decoder_sampled", "You are Expert 0. Solve step by step.",
                            samples=4, temperature=1.0, max_new_tokens=6, batch_size=16, seed=seed, decoder="fast")

    rows = run(3)
    assert all(len(r["completions"]) == 4 for r in rows)
    assert len({c for r in rows for c in r["completions"]}) > 3  # draws, not copies
    assert run(3) == rows and run(4) != rows
