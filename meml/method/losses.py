"""The pieces of MEML-GRPO's RIEL stage that are pure tensor or bookkeeping logic.

Shapes: ``rewards`` is (questions, experts, generations), one group of G samples per (question,
expert). See ``../shared/method.md`` (Eqs. 4-10 as reconstructed) and docs/method.md for the open
points and the defaults chosen here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import torch


def intra_expert_advantages(rewards: torch.Tensor, scale_by_std: bool = False, positive_only: bool = True,
                            eps: float = 1e-4) -> torch.Tensor:
    """Eq. 4 (and 5's truncation): reward minus the mean of the same expert's G rewards.

    ``scale_by_std`` divides by that group's sample standard deviation plus ``eps`` (TRL's GRPO
    convention); ``positive_only`` keeps ``max(A, 0)`` so only better-than-mean samples are
    reinforced. The result has the shape of ``rewards``.
    """
    if rewards.dim() != 3:
        raise ValueError(f"rewards must be (questions, experts, generations), got shape {tuple(rewards.shape)}")
    rewards = rewards.float()
    advantages = rewards - rewards.mean(dim=-1, keepdim=True)
    if scale_by_std:
        std = rewards.std(dim=-1, keepdim=True) if rewards.size(-1) > 1 else torch.zeros_like(advantages)
        advantages = advantages / (std + eps)
    if positive_only:
        advantages = advantages.clamp(min=0.0)
    return advantages


def best_and_worst_experts(rewards: torch.Tensor, correct_at: float = 1.0, rng: random.Random | None = None
                           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per question, the best (E+) and worst (E-) expert by mean reward, and whether transfer applies.

    Ties among the best (or among the worst) go to the lowest expert index, or with ``rng`` to one of the tied
    experts drawn uniformly (``rng.choice``, best before worst, question by question). Transfer is skipped
    (``valid`` False) when every expert has the same mean reward, or when E+ has no correct
    response (no reward >= ``correct_at``).
    """
    if rewards.dim() != 3:
        raise ValueError(f"rewards must be (questions, experts, generations), got shape {tuple(rewards.shape)}")
    means = rewards.float().mean(dim=-1)  # (Q, N)
    best_value = means.max(dim=1, keepdim=True).values
    worst_value = means.min(dim=1, keepdim=True).values
    index = torch.arange(means.size(1)).expand_as(means)
    big = means.size(1)
    best = torch.where(means == best_value, index, big).min(dim=1).values
    worst = torch.where(means == worst_value, index, big).min(dim=1).values
    if rng is not None:
        for q in range(means.size(0)):
            best[q] = rng.choice((means[q] == best_value[q]).nonzero().flatten().tolist())
            worst[q] = rng.choice((means[q] == worst_value[q]).nonzero().flatten().tolist())
    best_has_correct = (rewards.gather(1, best.view(-1, 1, 1).expand(-1, 1, rewards.size(2))) >= correct_at).any(
        dim=-1).squeeze(1)
    valid = (best_value.squeeze(1) > worst_value.squeeze(1)) & best_has_correct
    return best, worst, valid


def token_mean_nll(per_token_logps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mutual-learning term: mean negative log-likelihood over the masked tokens of all rows."""
    mask = mask.to(per_token_logps.dtype)
    return -(per_token_logps * mask).sum() / mask.sum().clamp(min=1.0)


@dataclass
class HardExampleBuffer:
    """Eq. 10's buffer of (question, expert prompt, reference answer) items.

    An expert with more than ``k`` wrong answers out of its G (``rule="gt"``; ``"ge"``: at least k)
    offers the item, which enters with probability ``k / G`` (``probability="k_over_g"``) or always
    (``"always"``). When ``capacity`` items are held, :meth:`full` is true; :meth:`drain` returns
    them and empties the buffer (the trainer then runs one SFT update on them).
    """

    capacity: int = 64
    k: int = 6
    rule: str = "gt"
    probability: str = "k_over_g"
    seed: int | str = 0
    items: list = field(default_factory=list)

    def __post_init__(self):
        if self.capacity < 1 or self.k < 0:
            raise ValueError(f"buffer: capacity must be >= 1 and k >= 0, got {self.capacity}, {self.k}")
        if self.rule not in ("gt", "ge"):
            raise ValueError(f"buffer.rule must be 'gt' or 'ge', got {self.rule!r}")
        if self.probability not in ("k_over_g", "always"):
            raise ValueError(f"buffer.probability must be 'k_over_g' or 'always', got {self.probability!r}")
        self._rng = random.Random(self.seed)

    def qualifies(self, n_wrong: int) -> bool:
        return n_wrong > self.k if self.rule == "gt" else n_wrong >= self.k

    def offer(self, item, n_wrong: int, group_size: int) -> bool:
        """Consider one (question, expert) outcome; return whether ``item`` was added."""
        if len(self.items) >= self.capacity or not self.qualifies(n_wrong):
            return False
        if self.probability == "k_over_g" and self._rng.random() >= min(1.0, self.k / group_size):
            return False
        self.items.append(item)
        return True

    @property
    def full(self) -> bool:
        return len(self.items) >= self.capacity

    def drain(self) -> list:
        items, self.items = self.items, []
        return items

    def state(self) -> dict:
        """JSON-able state (items and RNG) for checkpoints."""
        version, internal, gauss = self._rng.getstate()
        return {"items": list(self.items), "rng": [version, list(internal), gauss]}

    def load_state(self, state: dict) -> None:
        self.items = list(state["items"])
        version, internal, gauss = state["rng"]
        self._rng.setstate((version, tuple(internal), gauss))
