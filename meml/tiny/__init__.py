"""Tiny local stand-ins for Qwen2.5-Math-1.5B and Llama-3.2-1B-Instruct (tokenizer + model, no hub).

    tok = train_tokenizer(lines, "qwen2")            # or "llama"
    model = build_model("qwen2", tok, seed=0)
    save_pretrained_folder(model, tok, "runs/tiny-qwen2")
    # then AutoTokenizer / AutoModelForCausalLM / lm-eval hf / TRL / vLLM load it by path
"""

from .model import build_model, count_parameters, describe, folder_parameter_count, save_pretrained_folder
from .tokenizer import (
    FAMILIES,
    LLAMA_CHAT_TEMPLATE,
    PADDING_SIDE,
    PRETOKENIZE_REGEX,
    QWEN2_CHAT_TEMPLATE,
    train_backend,
    train_tokenizer,
)

__all__ = [
    "FAMILIES",
    "LLAMA_CHAT_TEMPLATE",
    "PADDING_SIDE",
    "PRETOKENIZE_REGEX",
    "QWEN2_CHAT_TEMPLATE",
    "build_model",
    "count_parameters",
    "describe",
    "folder_parameter_count",
    "save_pretrained_folder",
    "train_backend",
    "train_tokenizer",
]
