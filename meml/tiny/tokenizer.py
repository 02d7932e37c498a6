"""Train tiny byte-level BPE tokenizers that behave like Qwen2.5's and Llama-3's.

Both families share one pre-tokenization pipeline: NFC normalizer, then a ``Split`` on Qwen2's regex
(``\\p{N}`` alone, so every digit is its own pre-token and numbers are digit-level), then ``ByteLevel``
with ``use_regex=False``; the decoder is ``ByteLevel``. For ``qwen2`` this is exactly what
``Qwen2Tokenizer`` (which ``AutoTokenizer`` forces for ``model_type: qwen2``) rebuilds at load time, so
ids round-trip. For ``llama`` it is Llama-3's structure, except that Llama-3 groups ``\\p{N}{1,3}``;
we keep single digits so both families see numbers the same way.

The initial alphabet is the full 256-symbol byte-level alphabet, so any text (any UTF-8) is encodable
even if its characters never occur in the corpus.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from tokenizers import (
    Regex,
    Tokenizer,
    decoders,
    normalizers,
    pre_tokenizers,
    processors,
)
from tokenizers.models import BPE
from tokenizers.trainers import BpeTrainer

if TYPE_CHECKING:  # transformers is imported lazily so `train_backend` needs only `tokenizers`
    from transformers import PreTrainedTokenizerFast

FAMILIES = ("qwen2", "llama")

# Qwen2's pre-tokenization regex (transformers.models.qwen2.tokenization_qwen2.PRETOKENIZE_REGEX).
PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

# Padding side saved with the tokenizer. Real Qwen2.5 / Llama-3.2 checkpoints default to "right", but
# every consumer we use sets its own side (lm-eval's hf backend pads left for generation and right for
# loglikelihood; TRL pads prompts left and completions right itself), so "left" only changes ad-hoc
# batched `model.generate(**tok(batch, padding=True))`, where left is the correct choice.
PADDING_SIDE = "left"

QWEN2_SPECIALS = {"pad": "<|endoftext|>", "start": "<|im_start|>", "eos": "<|im_end|>"}
LLAMA_SPECIALS = {
    "bos": "<|begin_of_text|>",
    "start_header": "<|start_header_id|>",
    "end_header": "<|end_header_id|>",
    "eos": "<|eot_id|>",
    "pad": "<|finetune_right_pad_id|>",
}

# ChatML (Qwen2.5) without a default system message. The generation span covers the assistant
# content and its <|im_end|>, so TRL's assistant_only_loss trains the model to stop.
QWEN2_CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{% generation %}{{- message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{{- '\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

# Llama-3 style (no "Cutting Knowledge Date" system text, no default system). Like Llama-3, the
# content is trimmed and the template starts with the BOS token.
LLAMA_CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{% generation %}{{- message['content'] | trim + '<|eot_id|>' }}{% endgeneration %}"
    "{%- else %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    " + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)

# What `tokenizer_config.json` declares, mirroring the hub checkpoints. transformers 5 forces
# Qwen2Tokenizer for model_type qwen2 anyway; for llama, "PreTrainedTokenizerFast" loads tokenizer.json
# as-is (TokenizersBackend) in transformers 5 and 4.x alike (vLLM may ship either). Written into
# tokenizer_config.json by `save_pretrained_folder` (save_pretrained itself writes "TokenizersBackend").
TOKENIZER_CLASS = {"qwen2": "Qwen2Tokenizer", "llama": "PreTrainedTokenizerFast"}


def _special_tokens(family: str) -> list[str]:
    if family == "qwen2":
        return [QWEN2_SPECIALS["pad"], QWEN2_SPECIALS["start"], QWEN2_SPECIALS["eos"]]
    if family == "llama":
        return list(LLAMA_SPECIALS.values())
    raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")


def _backend(family: str) -> Tokenizer:
    tok = Tokenizer(BPE())  # no unk, no byte fallback: like Qwen2Tokenizer's BPE
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def train_backend(corpus: Iterable[str], family: str, vocab_size: int = 512) -> Tokenizer:
    """Train the raw `tokenizers.Tokenizer` (BPE + pipeline, specials first) used by `train_tokenizer`."""
    specials = _special_tokens(family)
    if vocab_size < 256 + len(specials):
        raise ValueError(f"vocab_size must be >= {256 + len(specials)} (byte alphabet + specials)")
    backend = _backend(family)
    trainer = BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # Materialise so a generator is consumed once, in order, and the trainer gets a sized list.
    backend.train_from_iterator(list(corpus), trainer=trainer)
    return backend


def train_tokenizer(corpus: Iterable[str], family: str, vocab_size: int = 512) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on `corpus` for `family` ("qwen2" or "llama"), with its specials and chat template.

    Deterministic: the same corpus gives the same vocabulary and merges. `vocab_size` is an upper
    bound (it includes the 256 byte symbols and the special tokens); a small corpus may yield fewer.
    Special tokens take the first ids. llama adds <|begin_of_text|> to plain encodes like Llama-3.
    """
    from transformers import PreTrainedTokenizerFast

    backend = train_backend(corpus, family, vocab_size)
    common = dict(tokenizer_object=backend, padding_side=PADDING_SIDE, clean_up_tokenization_spaces=False)
    if family == "qwen2":
        tokenizer = PreTrainedTokenizerFast(
            **common,
            bos_token=None,
            eos_token=QWEN2_SPECIALS["eos"],
            pad_token=QWEN2_SPECIALS["pad"],
            unk_token=None,
            add_bos_token=False,
            extra_special_tokens=[QWEN2_SPECIALS["start"]],
        )
        tokenizer.chat_template = QWEN2_CHAT_TEMPLATE
    else:
        tokenizer = PreTrainedTokenizerFast(
            **common,
            bos_token=LLAMA_SPECIALS["bos"],
            eos_token=LLAMA_SPECIALS["eos"],
            pad_token=LLAMA_SPECIALS["pad"],
            unk_token=None,
            add_bos_token=True,
            extra_special_tokens=[LLAMA_SPECIALS["start_header"], LLAMA_SPECIALS["end_header"]],
        )
        tokenizer.chat_template = LLAMA_CHAT_TEMPLATE
    return tokenizer
