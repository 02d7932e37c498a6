"""The SFT baselines' training rows: ExpertX-SFT and MoE-SFT (the paper's MEF stage).

- ExpertX-SFT: every training question with expert X's answer under expert X's system prompt.
- MoE-SFT (MEF): every question paired with every expert's answer under that expert's prompt,
  ``L_MEF = - sum_j sum_i log p(A_j^(i) | Q_j, P_i)``.

Training itself is :func:`meml.training.sft.train_sft`.
"""

from __future__ import annotations

from collections.abc import Sequence

from meml.methods import Method
from meml.training.sft import conversations


def method_rows(method: Method, questions: Sequence[str], trajectories: Sequence[Sequence[str | None]],
                prompts: Sequence[str]) -> list[dict]:
    """Training rows of an SFT method: ``ExpertX-SFT`` (expert X only) or ``MoE-SFT`` (every expert)."""
    if method.kind != "sft":
        raise ValueError(f"{method} is not an SFT method (Expert<k>-SFT or MoE-SFT)")
    rows = []
    for expert in method.experts(len(prompts)):
        if expert >= len(trajectories):
            raise ValueError(f"{method}: no trajectories for expert {expert}")
        rows.extend(conversations(questions, trajectories[expert], prompts[expert]))
    return rows
