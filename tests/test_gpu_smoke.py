"""bench/gpu_smoke.sh in its degraded (CPU) mode: it runs end to end, reports DEGRADED and PASS, writes its JSON."""

import json
import os
import subprocess

import pytest

from tests.conftest import REPO_ROOT


@pytest.mark.slow
def test_gpu_smoke_degraded_mode_passes(tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # degraded even on a machine with a GPU
    out = tmp_path / "report" / "gpu_smoke.json"
    proc = subprocess.run(["bash", str(REPO_ROOT / "bench" / "gpu_smoke.sh"), "--steps", "2", "--out", str(out),
                           "--workdir", str(tmp_path / "work"), "--max-minutes", "6"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=420)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    assert "DEGRADED" in output and "n/a on CPU" in output
    assert proc.stdout.rstrip().endswith("PASS"), output[-3000:]
    report = json.loads(out.read_text())
    assert {"status", "mode", "degraded", "versions", "stages", "checks", "summary", "total_wall_s"} <= set(report)
    assert report["status"] == "PASS" and report["degraded"] is True and report["mode"].startswith("DEGRADED")
    assert set(report["stages"]) == {"setup", "grpo", "meml", "eval"}
    for name in ("grpo", "meml"):
        result = report["stages"][name]["result"]
        assert result["steps_logged"] == 2 and result["generation"]["tokens_per_s"] > 0
        assert result["trainer"]["device"] == "cpu" and not result["trainer"]["use_vllm"]
    assert report["stages"]["eval"]["result"]["items"] == 50
    assert 0 <= report["summary"]["eval_accuracy"] <= 1
    assert {"grpo_rollout_tokens_per_s", "meml_rollout_tokens_per_s", "eval_wall_s"} <= set(report["summary"])
    assert not any((tmp_path / "work").iterdir())  # the run folder is removed after a PASS
