"""A hard time budget for symbolic answer checks, and the count of answers it cut off.

math-verify hands LaTeX to sympy, which can compute without bound (``10^{10^{10}}``, a huge binomial)
and whose own time limit uses ``signal.alarm``, which works only in the main thread of the main
interpreter. So every math-verify call here runs in a worker process that is killed when the call
exceeds its budget: the limit holds in threads, in dataloader workers and in the main thread alike.
Two lines of defence:

1. :func:`screen` refuses shapes known to be expensive before any sympy call (huge numbers or
   exponents, factorials, binomials, Gamma, sums and products, deep nesting, long inputs).
2. :func:`math_verify_equal` runs the check in a pooled worker under :data:`VERIFY_BUDGET_S`.

Either way the answer scores 0 and :func:`counts` records it (``refused``, ``timed_out``); the RL reward
logs it per step. Arithmetic answers never reach this module: :mod:`meml.rewards.arith` evaluates them
exactly and with bounded cost in process.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import re
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

VERIFY_BUDGET_S = 1.5
"""Wall seconds one math-verify comparison may take, a worker's start (about 0.4 s) included."""
MAX_IDLE_WORKERS = 4

_WORKER = Path(__file__).with_name("_verify_worker.py")
_COUNTS = {"refused": 0, "timed_out": 0}
_COUNT_LOCK = threading.Lock()


def count(kind: str) -> None:
    """Record one answer cut off by the budget (``refused`` before sympy, or ``timed_out``)."""
    with _COUNT_LOCK:
        _COUNTS[kind] += 1


def counts() -> dict[str, int]:
    """Answers cut off by the budget in this process so far: ``{"refused": n, "timed_out": m}``."""
    with _COUNT_LOCK:
        return dict(_COUNTS)


def over_budget_total() -> int:
    with _COUNT_LOCK:
        return _COUNTS["refused"] + _COUNTS["timed_out"]


# ---------------------------------------------------------------------------------------------- screen

_MAX_LATEX_CHARS = 200
_MAX_LATEX_DIGITS = 30  # one number; beyond this exact sympy arithmetic gets slow and no answer needs it
_MAX_BRACE_DEPTH = 8
_EXPENSIVE = re.compile(
    r"\\(?:binom|dbinom|tbinom|choose|Gamma|gamma|Pi|prod|sum|int|iint|oint|lim|zeta|operatorname)(?![A-Za-z])|!"
    r"|\^\s*\{?\s*[-\u2212]?\s*[0-9]{3,}"  # exponents of three digits or more
    r"|\^[^$]*\^"  # power towers
    r"|\*\*|\\sqrt\s*\["  # python powers, n-th roots
)


def screen(latex: str) -> bool:
    """Whether ``latex`` is cheap enough to hand to sympy (False: refuse it)."""
    if len(latex) > _MAX_LATEX_CHARS or _EXPENSIVE.search(latex):
        return False
    if any(len(run) > _MAX_LATEX_DIGITS for run in re.findall(r"[0-9]+", latex)):
        return False
    depth = deepest = 0
    for char in latex:
        if char == "{":
            depth += 1
            deepest = max(deepest, depth)
        elif char == "}":
            depth -= 1
    return deepest <= _MAX_BRACE_DEPTH


# ---------------------------------------------------------------------------------------------- workers


class _Worker:
    """One math-verify process, used by one thread at a time."""

    def __init__(self) -> None:
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
        self.process = subprocess.Popen(
            [sys.executable, "-u", str(_WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env=env,
        )
        self.ready = False
        self.buffer = b""

    def _read_line(self, deadline: float) -> str | None:
        """One line of the worker's output, or None when ``deadline`` passes or the worker died."""
        fd = self.process.stdout.fileno()
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            readable, _, _ = select.select([fd], [], [], remaining)
            if readable:
                chunk = os.read(fd, 4096)
                if not chunk:
                    return None  # the worker died
                self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode("utf-8", "replace")

    def check(self, reference: str, prediction: str, deadline: float) -> bool | None:
        """math-verify's verdict, or None when ``deadline`` passed first (the worker must then be killed)."""
        if not self.ready:
            if self._read_line(deadline) != "ready":
                return None
            self.ready = True
        try:
            self.process.stdin.write((json.dumps([reference, prediction]) + "\n").encode("utf-8"))
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            return None
        line = self._read_line(deadline)
        return None if line is None else line == "true"

    def kill(self) -> None:
        try:
            self.process.kill()
        except OSError:
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - a kill that did not take
            log.warning("math-verify worker %d did not exit after SIGKILL", self.process.pid)

    def close(self) -> None:
        try:
            self.process.stdin.close()
            self.process.wait(timeout=1)
        except (OSError, subprocess.TimeoutExpired):
            self.kill()


class _Pool:
    """Idle workers shared by all threads; a busy thread gets a worker of its own."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.idle: list[_Worker] = []
        self.pid = os.getpid()

    def _take(self) -> _Worker:
        with self.lock:
            if self.pid != os.getpid():  # a forked child must not share its parent's pipes
                self.idle, self.pid = [], os.getpid()
            if self.idle:
                return self.idle.pop()
        return _Worker()

    def _give(self, worker: _Worker) -> None:
        with self.lock:
            if len(self.idle) < MAX_IDLE_WORKERS and self.pid == os.getpid():
                self.idle.append(worker)
                return
        worker.close()

    def check(self, reference: str, prediction: str, budget_s: float) -> bool | None:
        deadline = time.monotonic() + budget_s
        worker = self._take()
        verdict = worker.check(reference, prediction, deadline)
        if verdict is None:
            worker.kill()
        else:
            self._give(worker)
        return verdict

    def close(self) -> None:
        with self.lock:
            idle, self.idle = self.idle, []
        for worker in idle:
            worker.close()


_POOL = _Pool()
atexit.register(_POOL.close)
_CACHE: dict[tuple[str, str, bool], bool | None] = {}  # verdicts (None: cut off), oldest first
_CACHE_SIZE = 4096
_CACHE_LOCK = threading.Lock()
_MISSING = object()


def math_verify_equal(reference: str, prediction: str, screened: bool = True) -> bool:
    """math-verify equivalence of two LaTeX answers under the budget; False when cut off (and counted).

    ``screened=False`` skips :func:`screen` (tests use it to show the time limit alone holds).
    """
    if screened and not (screen(reference) and screen(prediction)):
        count("refused")
        return False
    key = (reference, prediction, screened)
    with _CACHE_LOCK:
        verdict = _CACHE.get(key, _MISSING)
    if verdict is _MISSING:
        verdict = _POOL.check(reference, prediction, VERIFY_BUDGET_S)
        with _CACHE_LOCK:
            _CACHE[key] = verdict
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.pop(next(iter(_CACHE)))
    if verdict is None:
        count("timed_out")
        log.warning("math-verify over its %.1f s budget on %.80r vs %.80r: scored 0", VERIFY_BUDGET_S, reference,
                    prediction)
        return False
    return verdict
