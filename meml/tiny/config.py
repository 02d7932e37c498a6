"""Shape of the tiny Qwen2/Llama models the embedded setting builds (``models.tiny``)."""

from __future__ import annotations

from dataclasses import dataclass

from meml.fields import check_fields, setting


@dataclass
class TinyModelConfig:
    """Size of the locally built tokenizer and model."""

    vocab_size: int = setting("BPE vocabulary of the tiny tokenizer.", 512, ge=300)
    hidden_size: int = setting("Width of the residual stream.", 96, ge=1)
    num_layers: int = setting("Decoder layers.", 3, ge=1)
    num_heads: int = setting("Attention heads.", 4, ge=1)
    num_kv_heads: int = setting("Key/value heads (grouped-query attention).", 2, ge=1)
    intermediate_size: int = setting("Width of the MLP.", 256, ge=1)
    max_position_embeddings: int = setting("Longest sequence (prompt and answer) the model takes.", 384, ge=1)

    def __post_init__(self):
        check_fields(self, "models.tiny")
