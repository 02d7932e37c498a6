"""Tiny, freshly initialised Qwen2 / Llama causal LMs saved as ordinary Hugging Face folders."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import torch
from transformers import (
    GenerationConfig,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from .tokenizer import (
    FAMILIES,
    LLAMA_CHAT_TEMPLATE,
    QWEN2_CHAT_TEMPLATE,
    QWEN2_SPECIALS,
    TOKENIZER_CLASS,
)

_CLASSES = {"qwen2": (Qwen2Config, Qwen2ForCausalLM), "llama": (LlamaConfig, LlamaForCausalLM)}


def _special_ids(family: str, tokenizer: PreTrainedTokenizerBase) -> dict[str, int]:
    ids = {"eos": tokenizer.eos_token_id, "pad": tokenizer.pad_token_id}
    if family == "qwen2":
        # Qwen2.5 configs use <|endoftext|> as bos_token_id although the tokenizer adds no BOS.
        ids["bos"] = tokenizer.convert_tokens_to_ids(QWEN2_SPECIALS["pad"])
    else:
        ids["bos"] = tokenizer.bos_token_id
    if any(v is None for v in ids.values()):
        raise ValueError(f"tokenizer lacks special tokens for {family}: {ids}")
    return ids


def build_model(
    family: str,
    tokenizer: PreTrainedTokenizerBase,
    hidden_size: int = 192,
    num_layers: int = 4,
    num_heads: int = 6,
    num_kv_heads: int = 2,
    intermediate_size: int = 512,
    max_position_embeddings: int = 512,
    seed: int = 0,
) -> PreTrainedModel:
    """A freshly initialised float32 `Qwen2ForCausalLM` / `LlamaForCausalLM` with tied embeddings.

    vocab_size = len(tokenizer); bos/eos/pad come from the tokenizer (eos = <|im_end|> / <|eot_id|>).
    Weights depend only on `seed` (the global torch RNG state is left untouched). The generation config
    is greedy (do_sample=False) and stores no max_new_tokens/max_length, so callers (lm-eval's
    max_gen_toks, TRL, vLLM) decide the length.
    """
    if family not in _CLASSES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    config_cls, model_cls = _CLASSES[family]
    ids = _special_ids(family, tokenizer)
    config = config_cls(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=ids["bos"],
        eos_token_id=ids["eos"],
        pad_token_id=ids["pad"],
        dtype="float32",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_cls(config)
    model = model.to(torch.float32)
    model.generation_config = GenerationConfig(
        bos_token_id=ids["bos"], eos_token_id=ids["eos"], pad_token_id=ids["pad"], do_sample=False
    )
    model.eval()
    return model


def count_parameters(model: torch.nn.Module, include_embeddings: bool = True) -> int:
    """Number of distinct parameters (tied embedding counted once); optionally without the embedding."""
    total = sum(p.numel() for p in model.parameters())
    if not include_embeddings:
        total -= model.get_input_embeddings().weight.numel()
    return total


def _patch_tokenizer_config(folder: Path, family: str, model_max_length: int) -> None:
    """Make tokenizer_config.json look like the hub checkpoints' (and readable by transformers 4.x)."""
    path = folder / "tokenizer_config.json"
    cfg = json.loads(path.read_text(encoding="utf-8"))
    cfg["tokenizer_class"] = TOKENIZER_CLASS[family]
    cfg["model_max_length"] = model_max_length
    if "extra_special_tokens" in cfg:  # v5 name; v4 expects additional_special_tokens (v5 converts it back)
        extra = cfg.pop("extra_special_tokens")
        if isinstance(extra, list):
            cfg["additional_special_tokens"] = extra
        else:
            cfg["extra_special_tokens"] = extra
    # No add_bos_token: transformers 5 ignores it when tokenizer.json exists; the llama BOS is added
    # by tokenizer.json's post-processor, exactly as for Llama-3 checkpoints.
    # Also embed the template for consumers that predate chat_template.jinja (the file wins in v5).
    cfg["chat_template"] = QWEN2_CHAT_TEMPLATE if family == "qwen2" else LLAMA_CHAT_TEMPLATE
    path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def save_pretrained_folder(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, out_dir: str | os.PathLike
) -> Path:
    """Write model + tokenizer as an ordinary HF folder at `out_dir`, atomically.

    Everything is written to a temporary sibling directory which is renamed into place only after
    every file is written; an existing `out_dir` is replaced only then (and kept if anything fails).
    Loadable offline with `AutoTokenizer` / `AutoModelForCausalLM.from_pretrained(out_dir)`.
    """
    out = Path(out_dir).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    family = model.config.model_type
    if family not in _CLASSES:
        raise ValueError(f"unsupported model_type {family!r}")
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    old = None
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        _patch_tokenizer_config(tmp, family, model.config.max_position_embeddings)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            old.rmdir()
            os.rename(out, old)
        os.rename(tmp, out)
    except BaseException:
        if old is not None and old.exists() and not out.exists():
            os.rename(old, out)
            old = None
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out


def folder_parameter_count(folder: str | os.PathLike) -> int:
    """Parameter count of a saved folder, read from safetensors headers (no model load)."""
    from safetensors import safe_open

    total = 0
    for f in sorted(Path(folder).glob("*.safetensors")):
        with safe_open(str(f), framework="pt") as st:
            for name in st.keys():
                total += math.prod(st.get_slice(name).get_shape())
    return total


def describe(folder: str | os.PathLike) -> str:
    """One-line summary of a saved folder for logs: family, parameter count, vocab, shape."""
    cfg = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    n = folder_parameter_count(folder)
    return (
        f"{cfg.get('model_type')} params={n:,} ({n / 1e6:.2f}M) vocab={cfg.get('vocab_size')} "
        f"layers={cfg.get('num_hidden_layers')} hidden={cfg.get('hidden_size')} "
        f"heads={cfg.get('num_attention_heads')}/{cfg.get('num_key_value_heads')} "
        f"ctx={cfg.get('max_position_embeddings')} path={Path(folder)}"
    )
