"""Answer extraction and accuracy rewards: one extractor per benchmark family.

The same :func:`extract_answer` serves the RL training reward (:func:`make_reward_function`) and the
lm-eval tasks (:mod:`meml.evaluation`), so training and evaluation can never disagree on what counts
as correct. The grading rules, what counts as a committed answer and what scores 0 are written out in
``docs/method.md`` ("Grading"); in short:

* every completion is cut at an invented next turn (:data:`STOP_SEQUENCES`, which the lm-eval tasks
  also stop at) and read after any ``</think>``;
* ``gsm8k`` (:mod:`.gsm8k`): the last explicit answer statement (``####``, ``\\boxed{}``, "The answer
  is"), an equation by its result, a hedge as nothing; else the last number. Canonical strings:
  ``"1080"``, ``"18.5"``, ``"3/4"``;
* ``mathqa`` (:mod:`.mathqa`): a letter ``a``-``e`` the completion commits to, or (real MathQA only, not
  ``synth_mathqa``: :func:`strict_letters`) an explicitly stated value naming exactly one option; echoed option
  lists are not answers;
* ``strategyqa`` (:mod:`.strategyqa`): ``"yes"``/``"no"``, informal answers included, contradictions
  and hedges as nothing.

Every call is bounded: arithmetic is exact with capped sizes (:mod:`.arith`), and math-verify runs in
a worker process under a hard wall-clock budget (:mod:`.budget`) that holds in threads and dataloader
workers. An answer cut off by the budget scores 0 and is counted (:func:`budget_counts`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from meml.records import SYNTHETIC_PREFIX, task_of
from meml.rewards import budget, gsm8k, mathqa, strategyqa
from meml.rewards.text import STOP_SEQUENCES, own_answer

logger = logging.getLogger(__name__)

__all__ = ["OVER_BUDGET_METRIC", "STOP_SEQUENCES", "accuracy_reward", "budget_counts", "extract_answer",
           "make_reward_function", "same_answer"]

OVER_BUDGET_METRIC = "judge/over_budget"
"""Metric the RL reward logs each step: completions whose grading the budget cut off (scored 0)."""


def budget_counts() -> dict[str, int]:
    """Answers cut off by the budget in this process: ``{"refused": n, "timed_out": m}``."""
    return budget.counts()


def extract_answer(task: str, text: str, options: str | None = None) -> str | None:
    """Normalized answer of ``text`` for ``task`` (see the module docstring), or None.

    ``options`` (MathQA only) lets a value stated as the answer ("the answer is 30") name its option.

    Raises:
        ValueError: for an unknown task.
    """
    family = task_of(task)
    if not isinstance(text, str) or not text.strip():
        return None
    own = own_answer(text)
    if own is None or not own.strip():
        return None
    if family == "gsm8k":
        return gsm8k.extract(own)
    if family == "mathqa":
        return mathqa.extract(own, None if strict_letters(task) else options or None)
    return strategyqa.extract(own)


def strict_letters(task: str) -> bool:
    """Whether MathQA grading of ``task`` counts letters only: the synthetic set (``synth_mathqa``), whose every
    style names its letter, so a value with no letter commits to nothing there. The real set also credits a value
    stated as the answer that names exactly one option (LLM answers often do)."""
    return task == SYNTHETIC_PREFIX + "mathqa"


def _reference(family: str, reference: str, options: str | None) -> str | None:
    if family == "gsm8k":
        return gsm8k.reference(reference)
    if family == "mathqa":
        return mathqa.reference(reference, options)
    return strategyqa.reference(reference)


def accuracy_reward(task: str, completion: str, reference, options: str | None = None) -> float:
    """1.0 when the answer ``completion`` commits to equals ``reference``, else 0.0.

    ``reference`` may be a bare gold (``"18"``, ``"c"``, ``"yes"``, ``True``) or a full reference
    solution (its ``####`` line is the gold). GSM8K compares values exactly up to 1e-6 and other math
    with math-verify under the budget; MathQA compares letters (``options`` lets a stated value name
    its option); StrategyQA compares yes/no. Never raises on model text (only on an unknown task).
    """
    family = task_of(task)
    try:
        prediction = extract_answer(task, completion, options)
        if prediction is None:
            return 0.0
        gold = _reference(family, str(reference), options or None)
        if gold is None:
            return 0.0
        if family == "gsm8k":
            return 1.0 if gsm8k.equal(gold, prediction) else 0.0
        return 1.0 if gold == prediction else 0.0
    except Exception:  # noqa: BLE001 - odd model text must never crash training; no alarm is in play here
        logger.warning("accuracy_reward failed on a %s completion; scoring 0.0", family, exc_info=True)
        return 0.0


def same_answer(task: str, a: str | None, b: str | None) -> bool:
    """Whether two extracted answers (see :func:`extract_answer`) say the same thing (majority voting)."""
    if a is None or b is None:
        return False
    if task_of(task) == "gsm8k":
        return gsm8k.equal(a, b)
    return a == b


def _completion_text(completion) -> str:
    """Text of a plain or conversational completion (the last assistant message's content)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    if isinstance(completion, Sequence):
        messages = [m for m in completion if isinstance(m, dict)]
        assistant = [m for m in messages if m.get("role") == "assistant"] or messages
        if not assistant:
            return ""
        content = assistant[-1].get("content", "")
        if isinstance(content, str):
            return content
        if isinstance(content, Sequence):  # multimodal parts: [{"type": "text", "text": ...}]
            return "\n".join(
                str(part.get("text") or "") if isinstance(part, dict) else str(part) for part in content
            )
        return ""
    return "" if completion is None else str(completion)


def make_reward_function(task: str) -> Callable[..., list[float]]:
    """TRL ``GRPOTrainer`` reward function scoring accuracy for ``task``.

    The returned ``f(prompts, completions, answer, options=None, **kwargs)`` takes the dataset
    columns ``answer`` and (MathQA) ``options`` as lists; an options entry ``""``/None means none.
    When TRL passes its ``log_metric`` hook, each call logs :data:`OVER_BUDGET_METRIC`: how many of
    its completions the budget cut off.
    """
    family = task_of(task)  # an unknown task fails here, not at the first step

    def reward(prompts, completions, answer, options=None, log_metric=None, **kwargs) -> list[float]:
        if len(answer) != len(completions):
            raise ValueError(f"{len(completions)} completions but {len(answer)} answers")
        if options is None:
            options = [None] * len(completions)
        elif len(options) != len(completions):
            raise ValueError(f"{len(completions)} completions but {len(options)} options")
        before = budget.over_budget_total()
        scores = [
            accuracy_reward(task, _completion_text(completion), reference, option or None)
            for completion, reference, option in zip(completions, answer, options)
        ]
        if log_metric is not None:
            log_metric(OVER_BUDGET_METRIC, float(budget.over_budget_total() - before))
        return scores

    reward.__name__ = reward.__qualname__ = f"accuracy_{family}"
    return reward
