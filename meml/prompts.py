"""Expert system prompts and the chat messages built from them.

An expert is not a separate network: it is the same policy conditioned on a fixed system prompt
P_i. The exact texts are not published (an OPEN point); these defaults can be replaced through
the workflow config key ``experts.prompts``.
"""

from __future__ import annotations

from collections.abc import Sequence

DEFAULT_EXPERT_PROMPTS: tuple[str, ...] = (
    "You are Expert 0. Solve step by step.",
    "You are Expert 1. Solve step by step.",
    "You are Expert 2. Solve step by step.",
)


def expert_prompt(expert: int, prompts: Sequence[str] = DEFAULT_EXPERT_PROMPTS) -> str:
    """System prompt P_i of expert ``expert``."""
    if not 0 <= expert < len(prompts):
        raise ValueError(f"expert {expert} out of range: {len(prompts)} expert prompts are configured")
    return prompts[expert]


def prompt_messages(question: str, system: str | None) -> list[dict]:
    """Chat messages of a prompt: optional system turn, then the question as the user turn."""
    messages = [] if system is None else [{"role": "system", "content": system}]
    messages.append({"role": "user", "content": question})
    return messages


def conversation(question: str, completion: str, system: str | None) -> list[dict]:
    """Chat messages of one training example (prompt plus the assistant's completion)."""
    return prompt_messages(question, system) + [{"role": "assistant", "content": completion}]
