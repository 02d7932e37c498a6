"""bench/gpu_smoke.py: its CPU-testable parts against the library (settings, runs, report), and bench/gpu_smoke.sh
in its degraded (CPU) mode: it runs end to end, reports DEGRADED and PASS, writes its JSON (slow)."""

import json
import os
import subprocess

import pytest

from tests.conftest import REPO_ROOT, load_bench


@pytest.fixture(scope="module")
def smoke():
    return load_bench("gpu_smoke")


def test_compute_per_mode(smoke):
    cpu = smoke._compute({"mode": {"device": "cpu", "precision": "fp32", "vllm": False}})
    assert cpu.device == "cpu" and not cpu.bf16 and cpu.grpo_args() == {"use_vllm": False}
    gpu = smoke._compute({"mode": {"device": "cuda", "precision": "bf16", "vllm": True}})
    assert gpu.bf16 and gpu.eval_backend == "vllm" and gpu.eval_dtype() == "bfloat16"
    assert gpu.vllm.rollouts and gpu.grpo_args() == {"use_vllm": True, "vllm_mode": "colocate",
                                                     "vllm_gpu_memory_utilization": 0.3,
                                                     "vllm_tensor_parallel_size": 1}
    plain = smoke._compute({"mode": {"device": "cuda", "precision": "fp32", "vllm": False}})
    assert plain.eval_backend == "hf" and plain.grpo_args() == {"use_vllm": False}
    assert (plain.gpus_per_job, plain.gpus_per_eval_job) == (1, 1)


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_runs_of_both_training_stages(smoke, device):
    """GRPO's published settings under the smoke sizes; MEML-GRPO's run as meml.pipeline.stages.riel derives it."""
    from meml.method.trainer import trainer_builder

    sizes = smoke.SIZES[device]["rl"]
    run = smoke.grpo_run({"steps": 3}, device)
    assert (run.algorithm, run.loss_type, run.scale_rewards, run.epsilon_high) == ("GRPO", "grpo", "group", 0.2)
    assert (run.steps, run.save_steps, run.learning_rate) == (3, 3, 1e-5)
    assert (run.prompts_per_step, run.num_generations, run.threads) == (
        sizes["prompts_per_step"], sizes["num_generations"], sizes["threads"])
    run.per_device_batch()  # the batch splits into whole micro-batches
    prompts = list(smoke.DEFAULT_EXPERT_PROMPTS)
    meml = smoke.meml_config()
    assert (meml.single_expert, meml.hsft, meml.iml, meml.lambda1_used) == (None, True, True, 1.0)
    assert (meml.buffer_k, meml.buffer_capacity, meml.buffer_probability) == (1, 2, "always")
    assert meml.experts(len(prompts)) == [0, 1, 2]
    grpo = meml.grpo_run(run, len(prompts))  # ceil(prompts_per_step / 3 experts) questions a step
    assert grpo.prompts_per_step == -(-sizes["prompts_per_step"] // 3)
    assert grpo.num_generations == run.num_generations and grpo.algorithm == "GRPO"
    assert callable(trainer_builder(meml, prompts))  # checks the experts without loading a model


def test_smoke_reward(smoke):
    completions = [[{"content": "ab"}], [{"content": "abc"}], [{"content": "abc"}], "abcd"]
    assert smoke.smoke_reward(None, completions, expert=[1, 1, 0, 2]) == [1.0, 0.0, 1.0, 1.0]
    assert smoke.smoke_reward(None, ["a", "bb"]) == [0.0, 1.0]


def test_vllm_on_fails_without_cuda_or_vllm(smoke, tmp_path, monkeypatch):
    """--vllm on never degrades to the transformers backends: no CUDA, or vLLM not importable, is a failure."""
    import builtins

    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="--vllm on, but no CUDA"):
        smoke.stage_setup({"vllm": "on", "eval_items": 7}, tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU machine without vLLM, seen from setup
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "a GPU")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    real_import = builtins.__import__

    def no_vllm(name, *args, **kwargs):
        if name == "vllm" or name.startswith("vllm."):
            raise ImportError("No module named 'vllm'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_vllm)
    with pytest.raises(RuntimeError, match="vLLM cannot be imported"):
        smoke.stage_setup({"vllm": "on", "eval_items": 7}, tmp_path)


def test_setup_stage_on_cpu(smoke, tmp_path, monkeypatch):
    """The setup stage in-process (no training, no subprocess): CPU mode, world and tiny model written."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # degraded even on a machine with a GPU
    result = smoke.stage_setup({"vllm": "off", "eval_items": 7}, tmp_path)
    mode = result["mode"]
    assert (mode["device"], mode["precision"], mode["vllm"]) == ("cpu", "fp32", False)
    assert result["vllm"]["error"].startswith("not tried")
    assert result["world"]["splits"] == {"train": 60, "test": 60}
    assert (tmp_path / "world" / "gsm8k" / "train.jsonl").exists()
    model = result["model"]
    assert model["hidden_size"] == 64 and model["num_layers"] == 2 and 0 < model["parameters"] < 1e6
    assert (tmp_path / "model" / "config.json").exists()


def fake_report(smoke, steps: int = 2, eval_items: int = 5) -> tuple[dict, dict]:
    """A finished degraded run's report, as main() assembles it from the stages' JSON."""
    plan = {"steps": steps, "max_minutes": 8.0, "eval_items": eval_items, "reward": "smoke", "vllm": "auto"}
    setup = {"mode": {"device": "cpu", "precision": "fp32", "vllm": False, "gpu_name": None, "gpu_count": 0,
                      "notes": []}, "vllm": {"importable": False, "error": "No module named 'vllm'"},
             "torch_cuda_build": None,
             "model": {"hidden_size": 64, "num_layers": 2, "num_heads": 4, "num_kv_heads": 2, "vocab_size": 400,
                       "parameters": 150_000}}

    def trained(name):
        log = {"mutual_questions_per_step": [2.0] * steps if name == "meml" else None,
               "buffer_sft_updates_last": 1.0 if name == "meml" else None, "tokens_per_step_time_s": 100.0,
               "tokens_per_step_time_s_after_first_step": 110.0, "completion_tokens": 500.0, "step_time_s": 5.0}
        generation = {"generation_calls": steps, "generation_s": 1.0, "completions_generated": 32,
                      "completion_tokens_generated": 500, "tokens_per_s": 500.0, "tokens_per_s_after_first_call": 600.0}
        return {"ok": True, "wall_s": 10.0, "work_s": 9.0, "memory": {}, "result": {
            "run_metrics": {"steps": steps}, "steps_logged": steps, "rollouts_per_step": 16, "rollout_layout": "...",
            "settings": {"max_completion_length": 32}, "train_wall_s": 3.0, "log": log, "generation": generation,
            "trainer": {"device": "cpu", "bf16": False, "use_vllm": False, "vllm_mode": None,
                        "model_dtype": "torch.float32", "vllm_dtype": None}}}

    stages = {"setup": {"ok": True, "wall_s": 5.0, "result": setup}, "grpo": trained("grpo"), "meml": trained("meml"),
              "eval": {"ok": True, "wall_s": 8.0, "result": {
                  "accuracy": 0.0, "items": eval_items, "backend": "hf", "max_new_tokens": 32,
                  "lm_eval_exact_match": 0.0, "note": smoke.ACCURACY_NOTE}}}
    report = {"status": "FAIL", "mode": smoke._mode_line(setup), "degraded": True, "plan": plan, "run_dir": "/tmp/x",
              "json": "/tmp/x.json", "stages": stages, "setup": setup, "errors": [], "timed_out": False,
              "total_wall_s": 31.0, "versions": {"python": "3.11"}}
    return report, plan


def test_checks_summary_and_report_of_a_degraded_run(smoke, capsys):
    report, plan = fake_report(smoke)
    assert report["mode"] == smoke.DEGRADED_NOTE
    report["checks"] = smoke.checks_of(report, plan)
    assert report["checks"] and all(c["ok"] for c in report["checks"]), report["checks"]
    report["status"] = "PASS"
    summary = smoke.summary_of(report)
    assert summary["status"] == "PASS" and summary["degraded"] is True and summary["eval_backend"] == "hf"
    assert summary["grpo_rollout_tokens_per_s"] == summary["meml_rollout_tokens_per_s"] == 500.0
    smoke.print_report(report, plan)
    out = capsys.readouterr().out
    assert "DEGRADED" in out and "n/a on CPU" in out and out.rstrip().endswith("PASS")


def test_checks_catch_a_meml_run_whose_terms_never_fired(smoke):
    report, plan = fake_report(smoke)
    report["stages"]["meml"]["result"]["log"].update(mutual_questions_per_step=[0.0, None],
                                                     buffer_sft_updates_last=0.0)
    report["stages"]["grpo"]["result"]["steps_logged"] = 1
    failed = {c["check"] for c in smoke.checks_of(report, plan) if not c["ok"]}
    assert failed == {"grpo: 2 steps trained and logged", "meml: mutual-learning term fired (smoke reward)",
                      "meml: hard-example buffer SFT update ran (smoke reward)"}


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
