"""Method names as values: ``Method.parse(name)`` and ``str(method)`` are the only place the grammar lives.

Grammar (a sweep point adds ``+<option>=<value>`` tags, :mod:`meml.sweeps`)::

    Expert<k>-SFT | MoE-SFT                               supervised fine-tuning (Table 4)
    <SFT method>-<GRPO|Dr.GRPO|DAPO>                      RL from that SFT start
    MEML-GRPO[-Expert<k>][-noHSFT][-noIML]                MEML-GRPO and its Table 5 ablations

``-Expert<k>`` on MEML-GRPO turns MoE off (start from ExpertK-SFT, sample under expert k only); mutual
learning needs two experts, so it requires ``-noIML``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Literal

RL_ALGORITHMS = ("GRPO", "Dr.GRPO", "DAPO")
SFT_METHODS = ("Expert0-SFT", "Expert1-SFT", "Expert2-SFT", "MoE-SFT")
MEML = "MEML-GRPO"
TAG = "+"

_SFT = re.compile(r"(?:Expert(?P<expert>\d+)|MoE)-SFT")
_RL = re.compile(_SFT.pattern + r"-(?P<algorithm>GRPO|Dr\.GRPO|DAPO)")
_MEML = re.compile(r"MEML-GRPO(?:-Expert(?P<expert>\d+))?(?P<nohsft>-noHSFT)?(?P<noiml>-noIML)?")
# the same grammar as plain patterns (no named groups) for the JSON schema
SFT_PATTERN, RL_PATTERN, MEML_PATTERN = (re.sub(r"\?P<\w+>", "", f"^{p.pattern}$") for p in (_SFT, _RL, _MEML))


@dataclass(frozen=True)
class Method:
    """One trained method: what it starts from, how it trains, and its sweep point."""

    kind: Literal["sft", "rl", "meml"]
    expert: int | None = None  # Expert<k> (start, and inference expert); None: MoE (every expert)
    algorithm: str | None = None  # RL algorithm (MEML-GRPO runs on GRPO's settings)
    hsft: bool = True  # MEML-GRPO: the hard-example buffer is used
    iml: bool = True  # MEML-GRPO: inter-expert mutual learning is used
    tags: tuple[tuple[str, str], ...] = ()  # sweep point: (short option name, formatted value)

    @classmethod
    def parse(cls, name: str) -> Method:
        """``"MoE-SFT-Dr.GRPO+lambda1=0.5"`` -> ``Method("rl", None, "Dr.GRPO", tags=(("lambda1", "0.5"),))``."""
        if not isinstance(name, str):
            raise ValueError(f"a method name must be a string, got {name!r}")
        base, *raw_tags = name.split(TAG)
        tags = []
        for tag in raw_tags:
            option, sep, value = tag.partition("=")
            if not sep or not option or not value:
                raise ValueError(f"{name}: sweep tag {tag!r} is not <option>=<value>")
            tags.append((option, value))
        if match := _SFT.fullmatch(base):
            method = cls("sft", _int(match["expert"]))
        elif match := _RL.fullmatch(base):
            method = cls("rl", _int(match["expert"]), match["algorithm"])
        elif match := _MEML.fullmatch(base):
            method = cls("meml", _int(match["expert"]), "GRPO", hsft=not match["nohsft"], iml=not match["noiml"])
            if method.expert is not None and method.iml:
                raise ValueError(f"{base}: mutual learning (IML) needs several experts; a single-expert variant must "
                                 "end in -noIML")
        else:
            raise ValueError(f"unknown method {name!r}: expected Expert<k>-SFT, MoE-SFT, <SFT method>-<algorithm> "
                             f"with algorithm in {RL_ALGORITHMS}, or MEML-GRPO[-Expert<k>][-noHSFT][-noIML]")
        return replace(method, tags=tuple(tags))

    def __str__(self) -> str:
        start = "MoE" if self.expert is None else f"Expert{self.expert}"
        if self.kind == "sft":
            base = f"{start}-SFT"
        elif self.kind == "rl":
            base = f"{start}-SFT-{self.algorithm}"
        else:
            base = MEML + ("" if self.expert is None else f"-Expert{self.expert}")
            base += ("" if self.hsft else "-noHSFT") + ("" if self.iml else "-noIML")
        return base + "".join(f"{TAG}{option}={value}" for option, value in self.tags)

    @property
    def moe(self) -> bool:
        """Trained on every expert's prompt (MoE-SFT start, multi-expert RL, MEML-GRPO with MoE)."""
        return self.expert is None

    @property
    def base(self) -> Method:
        """The method without its sweep tags."""
        return replace(self, tags=())

    @property
    def start(self) -> Method:
        """The SFT method an RL or MEML-GRPO method starts from (an SFT method starts from the base model)."""
        return Method("sft", self.expert)

    @property
    def trains_rl(self) -> bool:
        return self.kind in ("rl", "meml")

    def experts(self, n_experts: int) -> tuple[int, ...]:
        """Expert prompts it trains and is evaluated under: its own for Expert<k>, all for MoE."""
        if self.expert is None:
            return tuple(range(n_experts))
        if self.expert >= n_experts:
            raise ValueError(f"{self}: only {n_experts} experts are configured")
        return (self.expert,)


def _int(text: str | None) -> int | None:
    return None if text is None else int(text)
