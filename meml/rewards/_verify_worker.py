"""Worker process of :mod:`meml.rewards.budget`: math-verify equivalence checks, one per request line.

Protocol: one JSON array ``[reference, prediction]`` per stdin line, one JSON ``true``/``false`` per
stdout line. It runs math-verify with its own (signal-based) timeouts off: the parent enforces the time
limit by killing this process. Its address space is capped so a runaway sympy computation fails here
instead of swapping the machine.
"""

import json
import resource
import sys

_MEMORY_LIMIT = 2 * 1024**3


def _serve() -> None:
    try:
        resource.setrlimit(resource.RLIMIT_AS, (_MEMORY_LIMIT, _MEMORY_LIMIT))
    except (ValueError, OSError):  # pragma: no cover - platform without RLIMIT_AS
        pass
    from math_verify import parse, verify

    sys.stdout.write("ready\n")
    sys.stdout.flush()
    for line in sys.stdin:
        try:
            reference, prediction = json.loads(line)
            gold = parse(f"${reference}$", parsing_timeout=None)
            target = parse(f"${prediction}$", parsing_timeout=None)
            equal = bool(gold) and bool(target) and bool(verify(gold, target, timeout_seconds=None))
        except Exception:  # noqa: BLE001 - model text must never kill the worker
            equal = False
        sys.stdout.write("true\n" if equal else "false\n")
        sys.stdout.flush()


if __name__ == "__main__":
    _serve()
