"""What every result file records: config, seed, package versions and the git commit."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import platform
import subprocess
from pathlib import Path

PACKAGES = ("meml-grpo", "torch", "transformers", "trl", "datasets", "accelerate", "tokenizers", "lm_eval",
            "math-verify", "snakemake")

REPO_ROOT = Path(__file__).resolve().parents[1]


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit() -> str:
    """HEAD commit of the checkout the code runs from, with ``-dirty`` when files differ; ``unknown`` outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(settings, seed: int | None) -> dict:
    """The block stored in every result file: the whole settings tree, seed, versions and commit."""
    return {
        "seed": seed,
        "config": settings.to_mapping(),
        "versions": package_versions(),
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
