"""Tiny local Qwen2 / Llama tokenizers and models (meml.tiny): build, save, reload by path, use."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from meml.tiny import (
    FAMILIES,
    build_model,
    count_parameters,
    describe,
    folder_parameter_count,
    save_pretrained_folder,
    train_backend,
    train_tokenizer,
)

REPO = Path(__file__).resolve().parents[1]
NAMES = ["Mia", "Tom", "Ava", "Leo", "Zoe", "Sam"]
ITEMS = ["marbles", "apples", "stickers", "coins", "books"]
EOT = {"qwen2": "<|im_end|>", "llama": "<|eot_id|>"}
SAMPLES = [
    "Mia has 7 marbles. She finds 3 more.\n7+3 = <<7+3=10>>10\n#### 10",
    "a ) 12 , b ) 15 , c ) 18 , d ) 21 , e ) 24",
    "Is the sky green? no\nIs 4 even? yes",
    "  leading and  double  spaces\n\n\ttab, then unicode: café naïve 42°C — ok",
    "Total = 1234567890 + 0.5 * (3/4) - 2^10",
]


def make_corpus(n: int = 300, seed: int = 0) -> list[str]:
    """A few hundred GSM8K-, MathQA- and yes/no-like lines, deterministic."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        name, item = rng.choice(NAMES), rng.choice(ITEMS)
        a, b = rng.randint(1, 99), rng.randint(1, 99)
        kind = rng.randrange(3)
        if kind == 0:
            lines.append(
                f"{name} has {a} {item}. She finds {b} more.\n{a}+{b} = <<{a}+{b}={a + b}>>{a + b}\n#### {a + b}"
            )
        elif kind == 1:
            opts = " , ".join(f"{c} ) {a + i * b}" for i, c in enumerate("abcde"))
            lines.append(f"What is {a} plus {b} times 4? {opts}")
        else:
            lines.append(f"Is {a} greater than {b}? {'yes' if a > b else 'no'}")
    return lines


@pytest.fixture(autouse=True)
def single_thread():
    """Tiny models run many tiny ops; with other jobs on a 2-core box, OpenMP barriers make 2 threads
    up to 50x slower than 1. Tests run single-threaded."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return make_corpus()


@pytest.fixture(scope="module", params=FAMILIES)
def built(request, corpus, tmp_path_factory):
    """(family, tokenizer, model, folder, reloaded tokenizer, reloaded model)."""
    family = request.param
    tok = train_tokenizer(corpus, family)
    model = build_model(family, tok, seed=0)
    folder = save_pretrained_folder(model, tok, tmp_path_factory.mktemp(family) / "model")
    tok2 = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model2 = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    return family, tok, model, folder, tok2, model2


def test_folder_contents_and_configs(built):
    family, tok, model, folder, tok2, model2 = built
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json"} <= names
    assert "tokenizer_config.json" in names
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temp leftovers
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["model_type"] == family and cfg["tie_word_embeddings"] is True
    assert cfg["vocab_size"] == len(tok) == len(tok2)
    gen = json.loads((folder / "generation_config.json").read_text())
    assert gen["do_sample"] is False
    assert "max_new_tokens" not in gen and "max_length" not in gen
    eos = tok.convert_tokens_to_ids(EOT[family])
    assert cfg["eos_token_id"] == gen["eos_token_id"] == tok2.eos_token_id == eos
    assert cfg["pad_token_id"] == gen["pad_token_id"] == tok2.pad_token_id
    if family == "qwen2":
        assert tok2.pad_token == "<|endoftext|>" and tok2.bos_token is None
        assert cfg["bos_token_id"] == tok2.convert_tokens_to_ids("<|endoftext|>")
    else:
        assert tok2.pad_token == "<|finetune_right_pad_id|>" and tok2.bos_token == "<|begin_of_text|>"
        assert cfg["bos_token_id"] == tok2.bos_token_id
    assert tok2.padding_side == "left"
    assert model2.dtype == torch.float32
    assert model2.get_output_embeddings().weight is model2.get_input_embeddings().weight
    assert folder_parameter_count(folder) == count_parameters(model) == count_parameters(model2)
    assert describe(folder).startswith(f"{family} params=")


def test_autotokenizer_class(built):
    family, _, _, folder, tok2, _ = built
    # transformers 5: qwen2 -> Qwen2Tokenizer (rebuilds the pipeline); llama -> tokenizer.json as-is.
    expected = "Qwen2Tokenizer" if family == "qwen2" else "TokenizersBackend"
    assert type(tok2).__name__ == expected
    assert json.loads((folder / "tokenizer_config.json").read_text())["tokenizer_class"] in (
        "Qwen2Tokenizer",
        "PreTrainedTokenizerFast",
    )


@pytest.mark.parametrize("text", SAMPLES)
def test_ids_roundtrip(built, text):
    family, tok, _, _, tok2, _ = built
    ids = tok(text)["input_ids"]
    assert tok2(text)["input_ids"] == ids
    assert tok2.decode(ids, skip_special_tokens=True) == text
    assert tok.decode(ids, skip_special_tokens=True) == text
    plain = tok2(text, add_special_tokens=False)["input_ids"]
    assert tok2.decode(plain) == text
    if family == "llama":  # like Llama-3, plain encodes start with <|begin_of_text|>
        assert ids == [tok2.bos_token_id] + plain
    else:
        assert ids == plain


def test_byte_alphabet_covers_ascii(built):
    _, tok, _, _, tok2, _ = built
    text = "".join(chr(c) for c in range(32, 127)) + "\n\t\r€ü漢😀"
    ids = tok2(text, add_special_tokens=False)["input_ids"]
    assert tok2.decode(ids) == text
    assert tok(text, add_special_tokens=False)["input_ids"] == ids
    for ch in (chr(c) for c in range(32, 127)):
        assert tok2.decode(tok2(ch, add_special_tokens=False)["input_ids"]) == ch


def test_digits_are_single_tokens(built):
    _, _, _, _, tok2, _ = built
    digit_ids = {}
    for d in "0123456789":
        ids = tok2(d, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1
        digit_ids[d] = ids[0]
    for number in ["10", "1234567890", "#### 72", "<<48+24=72>>72"]:
        toks = tok2.convert_ids_to_tokens(tok2(number, add_special_tokens=False)["input_ids"])
        digits_in_tokens = [t for t in toks if any(c.isdigit() for c in t)]
        assert all(len(t) == 1 for t in digits_in_tokens), toks
    assert [digit_ids[d] for d in "2024"] == tok2("2024", add_special_tokens=False)["input_ids"]


@pytest.mark.slow
def test_same_corpus_same_vocab(corpus):
    for family in FAMILIES:
        a, b = train_tokenizer(corpus, family), train_tokenizer(iter(corpus), family)
        assert a.backend_tokenizer.to_str() == b.backend_tokenizer.to_str()
    # and across processes (Rust hash maps are seeded per process); the child loads only `tokenizers`
    here = hashlib.sha256(train_backend(corpus, "qwen2").to_str().encode()).hexdigest()
    code = (
        "import hashlib, importlib.util, json, sys\n"
        "spec = importlib.util.spec_from_file_location('tiny_tokenizer', sys.argv[1])\n"
        "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
        "corpus = json.loads(sys.stdin.read())\n"
        "print(hashlib.sha256(mod.train_backend(corpus, 'qwen2').to_str().encode()).hexdigest())\n"
    )
    src = str(REPO / "meml" / "tiny" / "tokenizer.py")
    out = subprocess.run(
        [sys.executable, "-c", code, src], input=json.dumps(corpus), capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == here
    assert train_backend(corpus, "qwen2").get_vocab() == train_tokenizer(corpus, "qwen2").get_vocab()


CONVO = [
    {"role": "user", "content": "Mia has 7 marbles. She finds 3 more. How many?"},
    {"role": "assistant", "content": "7+3 = <<7+3=10>>10\n#### 10"},
]
SYSTEM = {"role": "system", "content": "Reason step by step."}


def test_chat_template_render(built):
    family, _, _, _, tok2, _ = built
    user, answer = CONVO[0]["content"], CONVO[1]["content"]
    no_sys = tok2.apply_chat_template(CONVO, tokenize=False)
    with_sys = tok2.apply_chat_template([SYSTEM, CONVO[0]], tokenize=False, add_generation_prompt=True)
    prompt_only = tok2.apply_chat_template(CONVO[:1], tokenize=False)
    if family == "qwen2":
        assert no_sys == (
            f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n{answer}<|im_end|>\n"
        )
        assert with_sys == (
            f"<|im_start|>system\n{SYSTEM['content']}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n"
            "<|im_start|>assistant\n"
        )
        assert prompt_only == f"<|im_start|>user\n{user}<|im_end|>\n"
    else:
        h = "<|start_header_id|>{}<|end_header_id|>\n\n"
        assert no_sys == (
            f"<|begin_of_text|>{h.format('user')}{user}<|eot_id|>{h.format('assistant')}{answer}<|eot_id|>"
        )
        assert with_sys == (
            f"<|begin_of_text|>{h.format('system')}{SYSTEM['content']}<|eot_id|>"
            f"{h.format('user')}{user}<|eot_id|>{h.format('assistant')}"
        )
        assert prompt_only == f"<|begin_of_text|>{h.format('user')}{user}<|eot_id|>"
    # tokenize=True with return_dict=False gives plain ids, with no extra BOS from add_special_tokens
    ids = tok2.apply_chat_template(CONVO, tokenize=True, return_dict=False)
    assert ids == tok2(no_sys, add_special_tokens=False)["input_ids"]
    assert tok2.decode(ids) == no_sys


@pytest.mark.parametrize("with_system", [False, True])
def test_assistant_mask(built, with_system):
    family, _, _, _, tok2, _ = built
    msgs = ([SYSTEM] if with_system else []) + CONVO + [
        {"role": "user", "content": "And 2 more?"},
        {"role": "assistant", "content": "10+2 = 12\n#### 12"},
    ]
    out = tok2.apply_chat_template(msgs, return_assistant_tokens_mask=True, return_dict=True)
    ids, mask = out["input_ids"], out["assistant_masks"]
    assert len(ids) == len(mask)
    eot = tok2.convert_tokens_to_ids(EOT[family])
    spans, cur = [], []
    for i, (t, m) in enumerate(zip(ids, mask)):
        if m:
            cur.append(t)
        elif cur:
            spans.append(cur)
            cur = []
    if cur:
        spans.append(cur)
    expected = [m["content"] for m in msgs if m["role"] == "assistant"]
    assert len(spans) == len(expected)
    for span, content in zip(spans, expected):
        assert span == tok2(content, add_special_tokens=False)["input_ids"] + [eot]
    # TRL's own checks: generation markers present, end-of-turn token trained, no patching needed.
    from trl.chat_template_utils import (
        get_training_chat_template,
        has_generation_markers,
        is_chat_template_stop_token_trained,
    )

    assert has_generation_markers(tok2.chat_template)
    assert is_chat_template_stop_token_trained(tok2)
    assert get_training_chat_template(tok2) is None


def test_logits_identical_after_reload(built):
    _, tok, model, _, tok2, model2 = built
    batch = tok2(SAMPLES[:3], return_tensors="pt", padding=True)
    with torch.no_grad():
        a = model(**batch).logits
        b = model2(**batch).logits
    assert a.shape[-1] == len(tok)
    assert torch.equal(a, b)


def test_same_seed_same_weights(built):
    family, tok, model, *_ = built
    state = torch.random.get_rng_state()
    again = build_model(family, tok, seed=0)
    assert torch.equal(torch.random.get_rng_state(), state)  # global RNG untouched
    other = build_model(family, tok, seed=1)
    sa, sb, sc = model.state_dict(), again.state_dict(), other.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


@pytest.mark.slow
def test_greedy_generate_stops_at_eos(built):
    """Overfit one chat turn for a few steps, then greedy decoding must emit the answer and stop at eos."""
    family, tok, _, _, tok2, model2 = built
    model = build_model(family, tok, seed=0)
    msgs = [{"role": "user", "content": "What is 2+3?"}, {"role": "assistant", "content": "#### 5"}]
    full = tok2.apply_chat_template(msgs, return_dict=False)
    prompt = tok2.apply_chat_template(msgs[:1], add_generation_prompt=True, return_dict=False)
    assert full[: len(prompt)] == prompt
    x = torch.tensor([full])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    torch.manual_seed(0)
    for _ in range(40):
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()
    eos = tok2.eos_token_id
    attention = torch.ones(1, len(prompt), dtype=torch.long)
    out = model.generate(torch.tensor([prompt]), attention_mask=attention, max_new_tokens=20)
    new = out[0, len(prompt):].tolist()
    assert new[-1] == eos and len(new) < 20, tok2.decode(new)
    assert tok2.decode(new, skip_special_tokens=True) == "#### 5"
    # the untrained reloaded model also generates (greedy, no max_new_tokens in its config)
    batch = tok2(["Mia has 7", "a ) 12 , b )"], return_tensors="pt", padding=True)
    gen = model2.generate(**batch, max_new_tokens=5)
    assert gen.shape[0] == 2 and batch["input_ids"].shape[1] < gen.shape[1] <= batch["input_ids"].shape[1] + 5


def test_save_is_atomic(built, tmp_path):
    family, tok, model, *_ = built
    out = tmp_path / "m"
    save_pretrained_folder(model, tok, out)
    marker = out / "marker.txt"
    marker.write_text("old")

    class Boom:
        def save_pretrained(self, *a, **k):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        save_pretrained_folder(model, Boom(), out)
    assert marker.read_text() == "old"  # old folder kept on failure
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    save_pretrained_folder(model, tok, out)  # replaced on success
    assert not marker.exists() and (out / "model.safetensors").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_lm_eval_hf_backend_loads(built):
    lm_eval_hf = pytest.importorskip("lm_eval.models.huggingface")
    from lm_eval.api.instance import Instance

    family, _, _, folder, _, _ = built
    lm = lm_eval_hf.HFLM(pretrained=str(folder), device="cpu", batch_size=2)
    assert lm.max_length == 512
    req = Instance("generate_until", None, ("Mia has 3", {"until": ["\n\n"], "max_gen_toks": 4}), 0)
    assert len(lm.generate_until([req])) == 1
    ll = lm.loglikelihood([Instance("loglikelihood", None, ("Mia has", " 3 marbles."), 0)])
    assert ll[0][0] < 0


@pytest.mark.slow
def test_trl_sft_assistant_only_and_grpo_load_by_path(built, tmp_path):
    """TRL loads the folder by path: SFT with assistant_only_loss labels exactly the answer + eos; GRPO steps."""
    trl = pytest.importorskip("trl")
    from datasets import Dataset

    family, _, _, folder, tok2, _ = built
    chats = [
        {"messages": [{"role": "user", "content": f"What is {i}+1?"}, {"role": "assistant", "content": f"#### {i + 1}"}]}
        for i in range(8)
    ]
    common = dict(max_steps=1, per_device_train_batch_size=4, report_to=[], use_cpu=True, save_strategy="no")
    sft = trl.SFTTrainer(
        model=str(folder),
        train_dataset=Dataset.from_list(chats),
        args=trl.SFTConfig(output_dir=str(tmp_path / "sft"), assistant_only_loss=True, **common),
    )
    row = sft.train_dataset[0]
    labelled = [t for t in row["labels"] if t != -100]
    assert labelled == tok2("#### 1", add_special_tokens=False)["input_ids"] + [tok2.eos_token_id]
    sft.train()
    grpo = trl.GRPOTrainer(
        model=str(folder),
        reward_funcs=lambda completions, **kw: [float(len(c[0]["content"])) for c in completions],
        train_dataset=Dataset.from_list([{"prompt": c["messages"][:1]} for c in chats]),
        args=trl.GRPOConfig(
            output_dir=str(tmp_path / "grpo"), num_generations=4, max_completion_length=8, **common
        ),
    )
    grpo.train()


def _expected_parameters(family: str, vocab: int, shape) -> int:
    """Parameters of a tiny model of ``shape`` (``models.tiny``), counted by hand from the architecture."""
    hidden, kv = shape.hidden_size, shape.num_kv_heads * (shape.hidden_size // shape.num_heads)
    attention = 2 * hidden * hidden + 2 * hidden * kv  # q and o (hidden x hidden), k and v (hidden x kv width)
    if family == "qwen2":
        attention += hidden + 2 * kv  # Qwen2 has q/k/v biases, Llama none
    mlp = 3 * hidden * shape.intermediate_size  # gate, up, down
    layer = attention + mlp + 2 * hidden  # two RMSNorms
    return vocab * hidden + shape.num_layers * layer + hidden  # tied embedding, layers, final norm


def test_configured_tiny_models_have_the_expected_size(corpus):
    """Both families built at the workflow's configured shape have exactly the hand-counted parameters, the same
    body apart from Qwen2's attention biases, and about the same size overall. (Speed figures: bench/.)"""
    from meml.pipeline.settings import load_settings

    shape = load_settings().models.tiny
    counts, bodies = {}, {}
    for family in FAMILIES:
        tok = train_tokenizer(corpus, family, vocab_size=shape.vocab_size)
        assert 300 <= len(tok) <= shape.vocab_size  # an upper bound: the small corpus may yield fewer merges
        model = build_model(family, tok, hidden_size=shape.hidden_size, num_layers=shape.num_layers,
                            num_heads=shape.num_heads, num_kv_heads=shape.num_kv_heads,
                            intermediate_size=shape.intermediate_size,
                            max_position_embeddings=shape.max_position_embeddings)
        config = model.config
        assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads, config.num_key_value_heads,
                config.intermediate_size, config.max_position_embeddings, config.vocab_size) == (
            shape.hidden_size, shape.num_layers, shape.num_heads, shape.num_kv_heads, shape.intermediate_size,
            shape.max_position_embeddings, len(tok))
        counts[family] = count_parameters(model)
        bodies[family] = count_parameters(model, include_embeddings=False)
        assert counts[family] == _expected_parameters(family, len(tok), shape)
        assert counts[family] - bodies[family] == len(tok) * shape.hidden_size  # the one (tied) embedding matrix
    kv = shape.num_kv_heads * (shape.hidden_size // shape.num_heads)
    assert bodies["qwen2"] - bodies["llama"] == shape.num_layers * (shape.hidden_size + 2 * kv)
    assert abs(counts["qwen2"] - counts["llama"]) <= 0.02 * counts["llama"]  # the two families: one size
    assert 100_000 < counts["llama"] < 1_000_000  # tiny: a few hundred thousand parameters at the default shape
