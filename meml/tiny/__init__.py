"""Tiny local stand-ins for Qwen2.5-Math-1.5B and Llama-3.2-1B-Instruct (tokenizer + model, no hub).

    tok = train_tokenizer(lines, "qwen2")            # or "llama"
    model = build_model("qwen2", tok, seed=0)
    save_pretrained_folder(model, tok, "runs/tiny-qwen2")
    # then AutoTokenizer / AutoModelForCausalLM / lm-eval hf / TRL / vLLM load it by path

The names below are imported on first use, so reading the settings (``meml.tiny.config``) does not
import torch and transformers.
"""

from importlib import import_module

_EXPORTS = {
    "build_model": ".model", "count_parameters": ".model", "describe": ".model", "folder_parameter_count": ".model",
    "save_pretrained_folder": ".model", "FAMILIES": ".tokenizer", "LLAMA_CHAT_TEMPLATE": ".tokenizer",
    "PADDING_SIDE": ".tokenizer", "PRETOKENIZE_REGEX": ".tokenizer", "QWEN2_CHAT_TEMPLATE": ".tokenizer",
    "train_backend": ".tokenizer", "train_tokenizer": ".tokenizer",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'meml.tiny' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name], __name__), name)
