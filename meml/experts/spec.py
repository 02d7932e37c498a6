"""What an expert source mapping (``experts.sources[i]``) may hold.

A source stays a mapping: whether a key is absent (its kind's default, :data:`meml.experts.teachers.DEFAULTS`)
or explicitly null (e.g. ``api_key_env: null``: send no key) matters to the teacher clients.
:class:`ExpertSource` describes every key once: its type, bounds and help, for the checks and the
JSON schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from meml.fields import setting

KINDS = ("gold", "programmatic", "openai", "local")


@dataclass
class ExpertSource:
    """gold (the dataset's reasoning), programmatic (a synthetic teacher), openai (a teacher LLM behind an
    OpenAI-compatible endpoint) or local (a teacher model run in-process); teacher LLMs are asked by
    `meml teacher` (meml/experts/teachers.py), defaults there."""

    kind: Literal["gold", "programmatic", "openai", "local"] = setting("Where the expert's trajectories come from.",
                                                                       "gold")
    style: Literal["gold", "terse", "verify"] = setting("programmatic: the answer style.", "gold")
    flaw: Literal["sub_as_add", "double_as_plus2", "triple_as_double"] | None = setting(
        "programmatic: the systematic wrong procedure on its blind slice (null: none).", None)
    error_rate: float = setting("programmatic: how often the flaw is applied where it can be.", 1.0, ge=0, le=1)
    base_url: str = setting("openai: endpoint root, /chat/completions is appended (e.g. https://api.deepseek.com/v1).",
                            "")
    model: str = setting("openai: model name; local: folder or hub id.", "")
    api_key_env: str | None = setting("openai: environment variable holding the API key (default OPENAI_API_KEY); "
                                      "null: send no key.", None)
    max_concurrency: int = setting("openai: requests in flight (default 8).", 8, ge=1)
    max_retries: int = setting("openai: retries of a transient failure: connection errors, timeouts, HTTP "
                               "408/409/429/5xx (the openai client's, with backoff and Retry-After) and malformed "
                               "replies (default 5).", 5, ge=0)
    retry_base_s: float = setting("No longer read: the openai client's own backoff is used (0.5 s doubling to 8 s, "
                                  "Retry-After honoured); remove the key.", 1.0)
    timeout_s: float = setting("openai: timeout per request (default 600).", 600.0, gt=0)
    temperature: float | None = setting("Sampling temperature (default 0.6; local 0: greedy; openai null: not sent).",
                                        None, ge=0)
    top_p: float | None = setting("Nucleus sampling share.", None, gt=0, le=1)
    max_tokens: int | None = setting("Answer length cap (openai default: the server's; local default 1024).", None,
                                     ge=1)
    reasoning: Literal["drop", "keep"] = setting(
        "A reasoning model's thinking: drop (default; kept in the cache only) or keep (prepended to the trajectory).",
        "drop")
    system_prompt: str | None = setting("System message sent to the teacher.", None)
    prompt_template: str = setting("User message with {question}; default: per-benchmark instructions ending in a "
                                   "'#### <answer>' line.", "")
    backend: Literal["transformers", "vllm"] = setting("local: generation backend.", "transformers")
    batch_size: int = setting("local: questions per generation call (default 8).", 8, ge=1)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = setting("local: weights dtype.", "auto")
    gpus: int = setting("local: GPUs the teacher job declares and uses (default 1): vLLM runs tensor parallel over "
                        "them, transformers spreads the layers over them; declared only when compute.device is cuda.",
                        1, ge=1)
    extra_body: dict[str, Any] = setting("openai: extra request fields, e.g. {top_k: 20}.", factory=dict)
