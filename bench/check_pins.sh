#!/usr/bin/env bash
# The three supported install sets, resolved by pip's dry run (issue 17); prints the versions each one gets.
#   bash bench/check_pins.sh [cpu] [gpu] [gpu-slurm]   # default: all three; needs the package index (or a
#                                                      # mirror); installs nothing
# Interpreters: $PY311 (default python3.11) and $PY313 (default python3.13).
#
# 1. CPU set (the default, CI):  Python 3.11, pip install -e ".[dev]"
# 2. GPU set (one GPU, a node):  Python 3.11, pip install -e ".[gpu]" -c constraints/gpu.txt
# 3. GPU + Slurm:                Python 3.13, pip install -e ".[gpu,slurm]" -c constraints/gpu.txt
#    (on Python <= 3.12 vLLM's mistral_common caps numpy below 2.4, while Slurm executor plugins >= 2.7 need
#    numpy >= 2.4.5 and older ones pandas < 3: no set resolves there)
# Each set gets a throw-away virtual environment under $TMPDIR so that its Python decides the markers.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO="$PWD"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/check-pins.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
SHOW="torch transformers trl lm_eval vllm accelerate datasets numpy pandas snakemake snakemake-executor-plugin-slurm openai ray"
status=0

resolve() {  # name, python, pip arguments...
    local name=$1 python=$2
    shift 2
    "$python" -m venv "$WORK/$name" >/dev/null
    echo "== $name: $("$WORK/$name/bin/python" --version 2>&1), pip install --dry-run $*"
    if "$WORK/$name/bin/pip" install --quiet --disable-pip-version-check --dry-run --ignore-installed \
            --report "$WORK/$name.json" "$@" > "$WORK/$name.log" 2>&1; then
        "$WORK/$name/bin/python" - "$WORK/$name.json" $SHOW <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
got = {item["metadata"]["name"].lower().replace("_", "-"): item["metadata"]["version"] for item in report["install"]}
print(f"   resolved {len(got)} packages: " + ", ".join(f"{n} {got.get(n.lower().replace('_', '-'), '-')}" for n in sys.argv[2:]))
PY
    else
        echo "   FAILED (last lines of pip's output):"
        grep -v '^WARNING: Location' "$WORK/$name.log" | tail -5 | sed 's/^/   /'
        status=1
    fi
}

sets=("$@")
[ ${#sets[@]} -eq 0 ] && sets=(cpu gpu gpu-slurm)
for set in "${sets[@]}"; do
    case $set in
        cpu) resolve cpu "${PY311:-python3.11}" -e "$REPO[dev]" ;;
        gpu) resolve gpu "${PY311:-python3.11}" -e "$REPO[gpu]" -c "$REPO/constraints/gpu.txt" ;;
        gpu-slurm) resolve gpu-slurm "${PY313:-python3.13}" -e "$REPO[gpu,slurm]" -c "$REPO/constraints/gpu.txt" ;;
        *) echo "unknown set $set (cpu, gpu, gpu-slurm)" >&2; exit 2 ;;
    esac
done
exit $status
