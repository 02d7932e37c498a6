"""A KV-cached sampler and a prompt-shared log-prob pass for Qwen2 / Llama causal LMs, over the model's own modules.

Generation of the tiny models is bound by per-step overhead, not arithmetic (an HF decode step of the 0.35M model
takes milliseconds for a few MFLOP), and the RL loss recomputes each prompt once per completion of its group. This
module runs the same layers (the model's own norms, projections, MLPs and rotary embedding; attention through
``scaled_dot_product_attention``) in a plain loop:

* :func:`sample` decodes a batch with a preallocated KV cache. ``exact=True`` reproduces transformers' ``generate``
  token for token (same batch layout, same logits processors, ``torch.multinomial`` on the same random stream);
  ``exact=False`` prefills each distinct prompt once, drops finished rows and samples by inverse CDF (the same
  distribution, another random stream), which is several times faster at the RL and evaluation shapes.
* :func:`prompt_shared_logps` returns what TRL's forward returns for a GRPO batch (per-token log-probs of the
  completions at a temperature, and their entropies) while computing each distinct prompt once; gradients of the
  shared prompt positions are summed over the rows that share them, exactly as the per-row forward would.

Both take any ``Qwen2ForCausalLM`` / ``LlamaForCausalLM`` that :func:`unsupported_reason` accepts; the trainers use
them only for such models on one process (``meml.training.fast_paths``), everything else keeps TRL's path.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

SUPPORTED_TYPES = ("qwen2", "llama")


def unsupported_reason(model) -> str | None:
    """Why :func:`sample` / :func:`prompt_shared_logps` cannot run ``model`` exactly (None: they can)."""
    config = getattr(model, "config", None)
    if getattr(config, "model_type", None) not in SUPPORTED_TYPES:
        return f"model_type {getattr(config, 'model_type', None)!r} is not one of {SUPPORTED_TYPES}"
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    rope_type = rope.get("rope_type", rope.get("type", "default")) if isinstance(rope, dict) else "default"
    if rope_type != "default":
        return f"rope type {rope_type!r} (only the default rotary embedding is implemented)"
    if getattr(config, "use_sliding_window", False):
        return "sliding-window attention"
    if getattr(config, "hidden_act", "silu") != "silu":
        return f"hidden_act {config.hidden_act!r}"
    if getattr(config, "mlp_bias", False):
        return "MLP biases"
    inner = getattr(model, "model", None)
    if inner is None or not all(hasattr(inner, a) for a in ("embed_tokens", "layers", "norm", "rotary_emb")):
        return "not a plain <Family>ForCausalLM (wrapped or adapted model)"
    return None


@dataclass
class _Shape:
    heads: int
    kv_heads: int
    head_dim: int

    @classmethod
    def of(cls, model) -> _Shape:
        config = model.config
        heads = config.num_attention_heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        return cls(heads, config.num_key_value_heads, head_dim)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin


def _attention_inputs(layer, hidden: torch.Tensor, cos, sin, shape: _Shape):
    """Queries (B, H, T, D) and rotated keys / values (B, Hkv, T, D) of one layer for normed ``hidden`` (B, T, E)."""
    attention = layer.self_attn
    batch, length = hidden.shape[:2]
    q = attention.q_proj(hidden).view(batch, length, shape.heads, shape.head_dim).transpose(1, 2)
    k = attention.k_proj(hidden).view(batch, length, shape.kv_heads, shape.head_dim).transpose(1, 2)
    v = attention.v_proj(hidden).view(batch, length, shape.kv_heads, shape.head_dim).transpose(1, 2)
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    return _rotate(q, cos, sin), _rotate(k, cos, sin), v


def _attend(layer, q, keys, values, mask, shape: _Shape) -> torch.Tensor:
    """Attention output (B, T, E) after ``o_proj``; ``mask`` (B, 1, T, S) is True where a query may see a key."""
    groups = shape.heads // shape.kv_heads
    if groups > 1:  # as transformers' repeat_kv before a masked SDPA call
        keys = keys.repeat_interleave(groups, dim=1)
        values = values.repeat_interleave(groups, dim=1)
    out = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, scale=layer.self_attn.scaling)
    batch, _, length, _ = q.shape
    return layer.self_attn.o_proj(out.transpose(1, 2).reshape(batch, length, -1))


def _prefix_mask(valid: torch.Tensor, past: int = 0) -> torch.Tensor:
    """(B, 1, T, past + T) causal mask over ``valid`` (B, past + T) keys; a padding query sees itself (no NaN rows)."""
    total = valid.shape[1]
    length = total - past
    query = torch.arange(past, total, device=valid.device)
    key = torch.arange(total, device=valid.device)
    causal = key[None, :] <= query[:, None]
    mask = causal[None] & valid[:, None, :]
    mask |= (key[None, :] == query[:, None])[None]
    return mask.view(valid.shape[0], 1, length, total)


# ----------------------------------------------------------------------------------------------------- sampling


@dataclass(frozen=True)
class SamplingSettings:
    """What transformers' sampling applies to the next-token logits, in its order: temperature, top-k, top-p."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float = 1.0

    def process(self, logits: torch.Tensor) -> torch.Tensor:
        """Float32 scores as transformers' ``TemperatureLogitsWarper``, ``TopKLogitsWarper``, ``TopPLogitsWarper``."""
        scores = logits.float()
        if self.temperature != 1.0:
            scores = scores / self.temperature
        if self.top_k:
            k = min(self.top_k, scores.size(-1))
            threshold = torch.topk(scores, k)[0][..., -1, None]
            scores = scores.masked_fill(scores < threshold, -float("inf"))
        if self.top_p < 1.0:
            sorted_logits, sorted_indices = torch.sort(scores, descending=False)
            cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
            remove = cumulative <= (1 - self.top_p)
            remove[..., -1:] = False
            scores = scores.masked_fill(remove.scatter(1, sorted_indices, remove), -float("inf"))
        return scores


def _inverse_cdf(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One token per row drawn from ``probs`` (rows sum to 1) with one uniform number each."""
    cdf = probs.cumsum(dim=-1)
    u = torch.rand(probs.shape[0], 1, generator=generator, device=probs.device) * cdf[:, -1:]
    return torch.searchsorted(cdf, u).squeeze(1).clamp_(max=probs.shape[-1] - 1)


class _Cache:
    """Preallocated keys and values of every layer: (layers, 2, rows, kv_heads, length, head_dim)."""

    def __init__(self, layers: int, rows: int, length: int, shape: _Shape, like: torch.Tensor):
        self.data = like.new_zeros(layers, 2, rows, shape.kv_heads, length, shape.head_dim)

    def write(self, layer: int, start: int, keys: torch.Tensor, values: torch.Tensor) -> None:
        end = start + keys.shape[2]
        self.data[layer, 0, :, :, start:end] = keys
        self.data[layer, 1, :, :, start:end] = values

    def read(self, layer: int, end: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.data[layer, 0, :, :, :end], self.data[layer, 1, :, :, :end]

    def keep(self, rows: torch.Tensor) -> None:
        self.data = self.data[:, :, rows]


def _step(model, tokens: torch.Tensor, positions: torch.Tensor, valid: torch.Tensor, cache: _Cache, start: int,
          shape: _Shape) -> torch.Tensor:
    """Run ``tokens`` (B, T) at ``positions`` (B, T) after ``start`` cached positions; the last position's logits."""
    inner = model.model
    hidden = inner.embed_tokens(tokens)
    cos, sin = inner.rotary_emb(hidden, positions)
    mask = _prefix_mask(valid[:, :start + tokens.shape[1]], past=start)
    for index, layer in enumerate(inner.layers):
        normed = layer.input_layernorm(hidden)
        q, k, v = _attention_inputs(layer, normed, cos, sin, shape)
        cache.write(index, start, k, v)
        keys, values = cache.read(index, start + tokens.shape[1])
        hidden = hidden + _attend(layer, q, keys, values, mask, shape)
        hidden = hidden + layer.mlp(layer.post_attention_layernorm(hidden))
    return model.lm_head(inner.norm(hidden[:, -1:])).squeeze(1)


class _Packed:
    """The model's weights fused for decoding without autograd: one QKV and one gate/up matrix per layer, a
    rotary table for every position, and grouped-query attention without repeating keys (``exact=False`` only)."""

    def __init__(self, model, shape: _Shape, positions: int):
        inner = model.model
        self.shape, self.embed, self.head = shape, inner.embed_tokens.weight, model.lm_head.weight
        self.norm = (inner.norm.weight, inner.norm.variance_epsilon)
        self.layers = []
        for layer in inner.layers:
            a, m = layer.self_attn, layer.mlp
            projections = (a.q_proj, a.k_proj, a.v_proj)
            qkv_bias = None  # Llama: none; Qwen2: all three
            if any(p.bias is not None for p in projections):
                qkv_bias = torch.cat([p.weight.new_zeros(p.weight.shape[0]) if p.bias is None else p.bias
                                      for p in projections])
            self.layers.append((
                (layer.input_layernorm.weight, layer.input_layernorm.variance_epsilon),
                torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight]), qkv_bias, a.o_proj.weight,
                a.o_proj.bias, a.scaling,
                (layer.post_attention_layernorm.weight, layer.post_attention_layernorm.variance_epsilon),
                torch.cat([m.gate_proj.weight, m.up_proj.weight]), m.down_proj.weight))
        table = torch.arange(positions, device=self.head.device)[None]
        cos, sin = inner.rotary_emb(self.head.new_zeros(1), table)
        self.cos, self.sin = cos[0], sin[0]

    @staticmethod
    def _rms(x, norm):
        weight, eps = norm
        return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

    def step(self, tokens: torch.Tensor, positions: torch.Tensor, valid: torch.Tensor, cache: _Cache,
             start: int) -> torch.Tensor:
        """As :func:`_step`, for one new token per row (tokens and positions: (B,))."""
        s = self.shape
        rows, groups = tokens.shape[0], s.heads // s.kv_heads
        hidden = F.embedding(tokens, self.embed)
        cos, sin = self.cos[positions][:, None, None], self.sin[positions][:, None, None]
        bias = torch.zeros(valid.shape[0], 1, 1, start + 1, device=hidden.device)
        bias.masked_fill_(~valid[:, None, None, :start + 1], -float("inf"))
        q_size, kv_size = s.heads * s.head_dim, s.kv_heads * s.head_dim
        for index, (norm1, w_qkv, b_qkv, w_o, b_o, scaling, norm2, w_gu, w_down) in enumerate(self.layers):
            qkv = F.linear(self._rms(hidden, norm1), w_qkv, b_qkv)
            q = qkv[:, :q_size].view(rows, s.kv_heads, groups, s.head_dim)
            k = qkv[:, q_size:q_size + kv_size].view(rows, s.kv_heads, 1, s.head_dim)
            v = qkv[:, q_size + kv_size:].view(rows, s.kv_heads, 1, s.head_dim)
            q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
            cache.write(index, start, k, v)
            keys, values = cache.read(index, start + 1)
            scores = torch.matmul(q, keys.transpose(-1, -2)) * scaling + bias
            attended = torch.matmul(scores.softmax(dim=-1), values).reshape(rows, q_size)
            hidden = hidden + F.linear(attended, w_o, b_o)
            gate, up = F.linear(self._rms(hidden, norm2), w_gu).chunk(2, dim=-1)
            hidden = hidden + F.linear(F.silu(gate) * up, w_down)
        return F.linear(self._rms(hidden, self.norm), self.head)


def _left_padded(prompts: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(p) for p in prompts)
    tokens = torch.full((len(prompts), width), pad_id, dtype=torch.long, device=device)
    valid = torch.zeros((len(prompts), width), dtype=torch.bool, device=device)
    for row, prompt in enumerate(prompts):
        if prompt:
            tokens[row, width - len(prompt):] = torch.tensor(prompt, dtype=torch.long)
            valid[row, width - len(prompt):] = True
    return tokens, valid


@torch.no_grad()
def sample(model, prompts: list[list[int]], max_new_tokens: int, eos_ids: list[int], pad_id: int,
           settings: SamplingSettings | None = None, do_sample: bool = True, exact: bool = False,
           generator: torch.Generator | None = None) -> list[list[int]]:
    """Completion token ids for each prompt, each ending at its first EOS (kept) or after ``max_new_tokens``.

    ``exact=True``: the tokens transformers' ``generate`` returns for this batch (left-padded, positions from the
    attention mask, one ``torch.multinomial`` over every row per step, from the global random stream).
    ``exact=False``: each distinct prompt is prefilled once, finished rows leave the batch and tokens are drawn by
    inverse CDF from ``generator`` (default: the global stream). Greedy decoding (``do_sample=False``) is the
    same in both modes.
    """
    if not prompts:
        return []
    if not all(prompts):
        raise ValueError("every prompt needs at least one token")
    settings = settings or SamplingSettings()
    shape = _Shape.of(model)
    device = model.lm_head.weight.device
    eos = torch.tensor(sorted(set(eos_ids)), device=device)
    if exact:
        unique, inverse = prompts, torch.arange(len(prompts), device=device)
    else:
        index: dict[tuple[int, ...], int] = {}
        inverse = torch.tensor([index.setdefault(tuple(p), len(index)) for p in prompts], device=device)
        unique = [list(p) for p in index]
    tokens, valid = _left_padded(unique, pad_id, device)
    width = tokens.shape[1]
    positions = (valid.long().cumsum(-1) - 1).masked_fill(~valid, 1)
    cache = _Cache(len(model.model.layers), len(unique), width + max_new_tokens, shape, model.lm_head.weight)
    key_valid = torch.cat([valid, valid.new_ones(len(unique), max_new_tokens)], dim=1)
    logits = _step(model, tokens, positions, key_valid, cache, 0, shape)
    if not exact:
        packed = _Packed(model, shape, int(positions.max()) + max_new_tokens + 1)
        cache.keep(inverse)
        logits, key_valid = logits[inverse], key_valid[inverse]
    last_position = positions[:, -1][inverse]
    rows = torch.arange(len(prompts), device=device)  # original row of each active row
    out = torch.full((len(prompts), max_new_tokens), pad_id, dtype=torch.long, device=device)
    lengths = torch.full((len(prompts),), max_new_tokens, dtype=torch.long, device=device)
    unfinished = torch.ones(len(prompts), dtype=torch.bool, device=device)
    for step in range(max_new_tokens):
        scores = settings.process(logits)
        if not do_sample:
            chosen = scores.argmax(dim=-1)
        elif exact:
            chosen = torch.multinomial(scores.softmax(dim=-1), num_samples=1).squeeze(1)
        else:
            chosen = _inverse_cdf(scores.softmax(dim=-1), generator)
        if exact:
            chosen = torch.where(unfinished, chosen, torch.full_like(chosen, pad_id))
        out[rows, step] = chosen
        ended = torch.isin(chosen, eos)
        if exact:
            ended &= unfinished
        lengths[rows[ended]] = step + 1
        if exact:
            unfinished &= ~ended
            if not unfinished.any():
                break
        elif ended.any():
            keep = ~ended
            if not keep.any():
                break
            rows, chosen, last_position = rows[keep], chosen[keep], last_position[keep]
            key_valid = key_valid[keep]
            cache.keep(keep.nonzero().squeeze(1))
        if step + 1 == max_new_tokens:
            break
        last_position = last_position + 1
        if exact:
            logits = _step(model, chosen[:, None], last_position[:, None], key_valid, cache, width + step, shape)
        else:
            logits = packed.step(chosen, last_position, key_valid, cache, width + step)
    return [out[row, :lengths[row]].tolist() for row in range(len(prompts))]


# ----------------------------------------------------------------------------------------------------- log-probs


def _layers_forward(model, hidden, cos, sin, mask, shape: _Shape, past=None):
    """Hidden states after every layer; returns (hidden, [(keys, values) per layer]) with ``past`` prepended."""
    states = []
    for index, layer in enumerate(model.model.layers):
        normed = layer.input_layernorm(hidden)
        q, k, v = _attention_inputs(layer, normed, cos, sin, shape)
        if past is not None:
            k = torch.cat([past[index][0], k], dim=2)
            v = torch.cat([past[index][1], v], dim=2)
        states.append((k, v))
        hidden = hidden + _attend(layer, q, k, v, mask, shape)
        hidden = hidden + layer.mlp(layer.post_attention_layernorm(hidden))
    return hidden, states


def prompt_shared_logps(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, logits_to_keep: int,
                        temperature: float = 1.0, compute_entropy: bool = False
                        ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-token log-probs (and entropies) of the last ``logits_to_keep`` tokens of each row, as TRL's forward.

    ``input_ids`` is a GRPO batch: left-padded prompts followed by right-padded completions. Positions run
    0..length-1 whatever the padding, as in TRL's forward (which passes no position ids). Rows whose prompt
    part (tokens and mask) is identical share one prompt pass; masked completion positions are zero.
    """
    prompt_length = input_ids.shape[1] - logits_to_keep
    if prompt_length < 1:
        raise ValueError("prompt_shared_logps needs at least one prompt position")
    shape = _Shape.of(model)
    inner = model.model
    prompt_part = torch.cat([input_ids[:, :prompt_length], attention_mask[:, :prompt_length]], dim=1)
    unique, inverse = torch.unique(prompt_part, dim=0, return_inverse=True)
    prompt_ids, prompt_valid = unique[:, :prompt_length], unique[:, prompt_length:].bool()
    device = input_ids.device
    positions = torch.arange(input_ids.shape[1], device=device)[None]

    hidden = inner.embed_tokens(prompt_ids)
    cos, sin = inner.rotary_emb(hidden, positions[:, :prompt_length])
    prompt_hidden, states = _layers_forward(model, hidden, cos, sin, _prefix_mask(prompt_valid), shape)
    shared = [(k[inverse], v[inverse]) for k, v in states]

    completion = input_ids[:, prompt_length:]
    hidden = inner.embed_tokens(completion)
    cos, sin = inner.rotary_emb(hidden, positions[:, prompt_length:])
    valid = attention_mask.bool()
    completion_hidden, _ = _layers_forward(model, hidden, cos, sin, _prefix_mask(valid, past=prompt_length), shape,
                                           past=shared)
    # the prompt's last position predicts the first completion token
    predicting = torch.cat([prompt_hidden[:, -1:][inverse], completion_hidden[:, :-1]], dim=1)
    logits = model.lm_head(inner.norm(predicting)).float() / temperature
    log_probs = logits.log_softmax(dim=-1)
    keep = valid[:, prompt_length:]
    selected = log_probs.gather(-1, completion.unsqueeze(-1)).squeeze(-1).masked_fill(~keep, 0.0)
    entropy = None
    if compute_entropy:
        entropy = -(log_probs.exp() * log_probs).sum(-1).masked_fill(~keep, 0.0)
    return selected, entropy
