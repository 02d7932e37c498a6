"""The reward's hard budget: LaTeX bombs come back fast from any thread or process, scored 0 and counted."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time

import pytest

from meml.rewards import (
    OVER_BUDGET_METRIC,
    accuracy_reward,
    budget,
    budget_counts,
    make_reward_function,
)
from meml.rewards.arith import TooExpensive
from meml.rewards.clause import parse_clause

BOMBS = [
    "\\boxed{10^{10^{10}}}",
    "\\boxed{10^{10^{10^{10}}}}",
    "\\boxed{2^{2^{2^{2^{2^{2}}}}}}",
    "\\boxed{\\binom{100000}{50000}}",
    "\\boxed{\\binom{10^{9}}{5}}",
    "\\boxed{\\Gamma(1000000)}",
    "\\boxed{\\sqrt[100000]{2}}",
    "\\boxed{99999!}",
    "\\boxed{(10!)!}",
    "\\boxed{" + "\\frac{1}{" * 400 + "2" + "}" * 400 + "}",
    "\\boxed{" + "9" * 5000 + "}",
    "#### " + "9" * 5000,
    "\\boxed{\\prod_{k=1}^{10^{9}} k}",
    "\\boxed{\\sum_{k=1}^{10^{12}} k^{k}}",
    "The answer is $10^{10^{10}}$.",
    "\\boxed{e^{e^{e^{e^{e}}}}}",
]


@pytest.mark.parametrize("bomb", BOMBS)
def test_a_bomb_scores_zero_fast_and_is_counted(bomb):
    before = sum(budget_counts().values())
    start = time.perf_counter()
    assert accuracy_reward("gsm8k", bomb, "5") == 0.0
    assert time.perf_counter() - start < 2.0
    assert sum(budget_counts().values()) > before, "a bomb must be counted as over budget"


def test_bombs_from_several_threads_each_come_back_within_two_seconds():
    durations, scores, errors = [], [], []

    def grade(text):
        try:
            start = time.perf_counter()
            scores.append(accuracy_reward("gsm8k", text, "5"))
            durations.append(time.perf_counter() - start)
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=grade, args=(bomb,)) for bomb in BOMBS * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert scores == [0.0] * len(threads)
    assert max(durations) < 2.0


def test_the_time_limit_alone_holds_in_threads():
    """Unscreened, a real bomb reaches sympy in a worker; the worker is killed at the budget, from any thread."""
    results, durations = [], []
    timed_out = budget.counts()["timed_out"]

    def check(exponent):  # a different bomb each, so no verdict comes from the cache
        start = time.perf_counter()
        results.append(budget.math_verify_equal(f"10^{{10^{{{exponent}}}}}", "5", screened=False))
        durations.append(time.perf_counter() - start)

    threads = [threading.Thread(target=check, args=(11 + i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    check(10)  # and the main thread at the same time
    for thread in threads:
        thread.join(timeout=30)
    assert results == [False] * 4
    assert max(durations) < 2.0
    assert budget.counts()["timed_out"] == timed_out + 4


def test_a_killed_worker_is_gone_and_the_pool_recovers():
    worker = budget._Worker()
    assert worker.check("\\sqrt{8}", "2\\sqrt{2}", time.monotonic() + 10) is True
    assert worker.check("10^{10^{10}}", "5", time.monotonic() + 0.5) is None
    worker.kill()
    assert worker.process.poll() is not None
    assert budget.math_verify_equal("\\sqrt{8}", "2\\sqrt{2}") is True


def test_math_verify_equivalence_still_works():
    assert accuracy_reward("gsm8k", "\\boxed{2\\sqrt{2}}", "\\sqrt{8}") == 1.0
    assert accuracy_reward("gsm8k", "\\boxed{\\sqrt{3}}", "\\sqrt{8}") == 0.0
    assert accuracy_reward("gsm8k", "\\boxed{\\pi r^2}", "r^2\\pi") == 1.0


def _grade_in_child(queue):
    queue.put(accuracy_reward("gsm8k", "\\boxed{2\\sqrt{2}}", "\\sqrt{8}"))


def test_budgeted_check_works_in_a_daemonic_process():
    """Dataloader workers are daemonic processes, which multiprocessing forbids to have children;
    the math-verify worker is a plain subprocess, so it starts there too."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_grade_in_child, args=(queue,), daemon=True)
    child.start()
    child.join(timeout=30)
    assert child.exitcode == 0
    assert queue.get(timeout=5) == 1.0


@pytest.mark.parametrize(
    ("latex", "ok"),
    [
        ("\\sqrt{8}", True),
        ("2\\sqrt{2}", True),
        ("\\frac{\\pi}{4}", True),
        ("10^{100}", False),
        ("x^{y^{z}}", False),
        ("\\binom{5}{2}", False),
        ("5!", False),
        ("\\Gamma(5)", False),
        ("\\sqrt[3]{2}", False),
        ("\\sum_{k=1}^{n} k", False),
        ("1" * 31, False),
        ("{" * 9 + "1" + "}" * 9, False),
        ("a" * 201, False),
    ],
)
def test_screen(latex, ok):
    assert budget.screen(latex) is ok


@pytest.mark.parametrize(
    "clause",
    ["10^(10^(10))", "(10!)!", "binom(100000,50000)", "9" * 4001, "2^100000", "root(100000,2)"],
)
def test_arithmetic_bombs_are_refused_before_any_work(clause):
    start = time.perf_counter()
    with pytest.raises(TooExpensive):
        parse_clause(clause, math=True)
    assert time.perf_counter() - start < 0.1


def test_reward_function_logs_how_many_completions_the_budget_cut_off():
    logged = []
    reward = make_reward_function("gsm8k")
    completions = ["#### 5", BOMBS[0], "\\boxed{99999!}", "The answer is 5."]
    scores = reward(["q"] * 4, completions, answer=["5"] * 4,
                    log_metric=lambda name, value: logged.append((name, value)))
    assert scores == [1.0, 0.0, 0.0, 1.0]
    assert logged == [(OVER_BUDGET_METRIC, 2.0)]
    logged.clear()
    reward(["q"], ["#### 5"], answer=["5"], log_metric=lambda name, value: logged.append((name, value)))
    assert logged == [(OVER_BUDGET_METRIC, 0.0)]


def test_over_budget_metric_has_a_readable_name_in_the_run_log():
    from meml.training.rl_log import canonical_row

    assert canonical_row(1, 0.5, {OVER_BUDGET_METRIC: 2.0})["reward_over_budget"] == 2.0


def test_no_worker_is_left_behind_by_a_timeout():
    before = set(_children())
    budget.math_verify_equal("10^{10^{20}}", "7", screened=False)
    leftover = set(_children()) - before
    assert not any(_is_running_worker(pid) for pid in leftover)


def _children() -> list[int]:
    path = f"/proc/{os.getpid()}/task/{os.getpid()}/children"
    try:
        with open(path) as handle:
            return [int(pid) for pid in handle.read().split()]
    except OSError:
        pytest.skip("no /proc children listing on this system")


def _is_running_worker(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split()[2] != "Z"
    except OSError:
        return False


PATHOLOGICAL = [
    "\\boxed{1} x " * 5000,  # many boxes
    "\\boxed{" * 20000 + "}" * 20000,  # deeply nested boxes
    "\\boxed{ " * 20000,  # unclosed boxes
    "#### 5\n" * 5000,
    "The answer is 5. " * 5000,
    "\\frac{1}{" * 3000 + "2" + "}" * 3000,
    "twenty " * 10000,
    "1 " * 50000,
    "<think>" * 5000,
    "\nQ1: is it? no. " * 5000,
    "a ) 1 , b ) 2 , c ) 3 , d ) 4 , e ) 5 , " * 3000,
    "blah 12 , answer ( " * 20000 + "\n#### 7",
    "yes no " * 20000,
    "(" * 50000 + ")" * 50000,
]


@pytest.mark.parametrize("text", PATHOLOGICAL, ids=range(len(PATHOLOGICAL)))
def test_pathological_text_is_graded_within_two_seconds(text):
    options = "a ) 10 , b ) 20 , c ) 30 , d ) 40 , e ) 5"
    for task in ("gsm8k", "mathqa", "strategyqa"):
        start = time.perf_counter()
        assert accuracy_reward(task, text, "5", options) in (0.0, 1.0)
        assert time.perf_counter() - start < 2.0, task
