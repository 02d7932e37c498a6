#!/usr/bin/env bash
# GPU smoke test: a few steps of GRPO and MEML-GRPO and an lm-eval evaluation on a tiny local model,
# with a report (mode, versions, stage times, rollout tokens/s, peak GPU memory) and PASS/FAIL.
# Works from any directory; relative --out/--workdir paths are taken from the calling directory.
#
#   bash bench/gpu_smoke.sh [--steps 4] [--max-minutes 8] [--out report.json] [--workdir DIR] [--vllm auto|on|off]
#
# Python: $PYTHON if set, else the repository's .venv, else python / python3 on PATH.
# All the logic (and --help) is in bench/gpu_smoke.py.
set -euo pipefail

export GPU_SMOKE_CALLER_CWD="$PWD"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export HF_HUB_OFFLINE=1
export HF_DATASETS_OFFLINE=1
export TRANSFORMERS_OFFLINE=1
export TOKENIZERS_PARALLELISM=false
export PYTHONDONTWRITEBYTECODE=1   # write nothing into the repository

if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then
        PYTHON=.venv/bin/python
    elif command -v python >/dev/null 2>&1; then
        PYTHON=python
    else
        PYTHON=python3
    fi
fi

exec "$PYTHON" bench/gpu_smoke.py "$@"
