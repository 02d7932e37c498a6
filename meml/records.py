"""The one normalized record type shared by the three benchmarks and their synthetic variants.

Every loader (hub, local JSON Lines in the original schema, synthetic generator output) turns its
rows into this shape, so prompts, rewards, SFT data and lm-eval tasks never look at a
benchmark-specific schema.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

TASKS = ("gsm8k", "mathqa", "strategyqa")
"""Benchmark families; each has one answer extractor in :mod:`meml.rewards`."""

SYNTHETIC_PREFIX = "synth_"

ANSWER_LINE = "#### "
"""Every gold completion ends with ``#### <answer>`` (GSM8K's convention, used for all three)."""


def task_of(dataset: str) -> str:
    """Benchmark family of a dataset name: ``synth_gsm8k`` -> ``gsm8k``; ``mathqa`` -> ``mathqa``."""
    name = dataset[len(SYNTHETIC_PREFIX):] if dataset.startswith(SYNTHETIC_PREFIX) else dataset
    if name not in TASKS:
        raise ValueError(
            f"unknown dataset {dataset!r}: expected one of {TASKS} or their synthetic variants "
            f"{tuple(SYNTHETIC_PREFIX + t for t in TASKS)}"
        )
    return name


@dataclass(frozen=True)
class Record:
    """One benchmark item, normalized.

    Attributes:
        id: stable identifier, unique within (dataset, split).
        task: benchmark family, one of :data:`TASKS` (chooses the answer extractor).
        dataset: dataset name, e.g. ``gsm8k`` or ``synth_gsm8k``.
        split: split name it was loaded from.
        question: the text shown to the model as the user turn (MathQA: problem, newline,
            ``Options: a ) .. , b ) ..``).
        answer: normalized gold answer: GSM8K number without commas, MathQA letter ``a``-``e``,
            StrategyQA ``yes``/``no``.
        rationale: expert 0's gold completion: the dataset's own reasoning, ending with the line
            ``#### <answer>``.
        options: MathQA options string in canonical ``a ) x , b ) y , ...`` form; ``""`` otherwise.
        slice: synthetic-world slice label (``A``, ``B``, ``C``); ``""`` for real data.
        meta: JSON object with extra source fields later stages need, e.g. the synthetic world's
            program; ``""`` for real data.
    """

    id: str
    task: str
    dataset: str
    split: str
    question: str
    answer: str
    rationale: str
    options: str = ""
    slice: str = ""
    meta: str = ""

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"record {self.id!r}: task {self.task!r} not in {TASKS}")
        if not self.answer:
            raise ValueError(f"record {self.id!r}: empty answer")

    def to_dict(self) -> dict:
        return asdict(self)


RECORD_FIELDS = tuple(Record.__dataclass_fields__)
