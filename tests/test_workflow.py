"""The config schema, the CLI and the Snakemake workflow (dry runs fast, one tiny end-to-end run slow)."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from meml.pipeline.cli import build_parser, main
from meml.pipeline.settings import ConfigError, load_settings, settings_from_config
from tests.conftest import REPO_ROOT

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def test_default_config_is_valid():
    config = load_settings()
    assert config.setting == "tiny"
    assert config.datasets == ["synth_gsm8k", "synth_mathqa", "synth_strategyqa"]


@pytest.mark.parametrize("mutate,message", [
    (lambda c: c["sft"].update(stpes=3), "sft: Additional properties are not allowed ('stpes'"),
    (lambda c: c["sft"].update(steps="3"), "sft.steps: '3' is not of type 'integer'"),
    (lambda c: c.update(datasets=["gsm9k"]), "datasets.0"),
    (lambda c: c["experts"]["sources"].pop(), "experts.sources has 2 entries but experts.prompts has 3"),
    (lambda c: c["sft"].update(methods=["Expert5-SFT"]), "sft.methods: Expert5-SFT: only 3 experts are configured"),
    (lambda c: c.update(datasets=["gsm8k"]), "programmatic teachers"),
    (lambda c: c["rl"].update(methods=["Expert0-SFT-GRPO"]) or c["sft"].update(methods=["MoE-SFT"]),
     "rl.methods: Expert0-SFT-GRPO starts from Expert0-SFT, which is not in sft.methods"),
    (lambda c: c["rl"]["algorithms"].update(DAPO={"epsilon_hgh": 0.3}), "rl.algorithms.DAPO: unknown setting"),
    (lambda c: c["meml"].update(methods=["MEML-GRPO-noIML-noHSFT"]), "meml.methods.0: 'MEML-GRPO-noIML-noHSFT' does not"),
    (lambda c: c["rl"].update(steps=0), "rl.steps: 0 is less than the minimum of 1"),
    (lambda c: c["experts"]["sources"][1].update(error_rate=2), "experts.sources.1.error_rate: 2 is greater than"),
    (lambda c: c["compute"].update(precision="bf16"), "compute.precision bf16 needs compute.device cuda"),
    (lambda c: c["meml"].update(methods=["MEML-GRPO-Expert1"]), "mutual learning (IML) needs several experts"),
    (lambda c: c["meml"].update(methods=["MEML-GRPO-Expert0-noIML"]) or c["sft"].update(
        methods=["Expert1-SFT", "MoE-SFT"]),
     "meml.methods: MEML-GRPO-Expert0-noIML starts from Expert0-SFT, which is not in sft.methods"),
    (lambda c: c["meml"].update(rollout_budget="shared"),
     "meml.rollout_budget 'shared' needs rl.num_generations (8) to be a multiple of the number of experts (3)"),
    (lambda c: c["meml"].update(report_expert=3), "meml.report_expert 3 is beyond"),
    (lambda c: c["meml"].update(lambda3=1), "meml: Additional properties are not allowed ('lambda3'"),
])
def test_bad_config_names_the_key(mutate, message):
    config = copy.deepcopy(load_settings().to_mapping())
    mutate(config)
    with pytest.raises(ConfigError) as err:
        settings_from_config(config, "my.yaml")
    assert message in str(err.value) and "my.yaml" in str(err.value)


def test_cli_lists_every_stage(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    for stage in ("make-world", "experts", "build-tiny", "pretrain", "sft", "rl", "riel", "evaluate", "compare",
                  "table4", "table5", "table6", "sample", "complementarity", "figures", "sweeps", "reports"):
        assert stage in text


def test_cli_version_and_stage_descriptions(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--version"])
    assert capsys.readouterr().out.startswith("meml ")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["riel", "--help"])
    assert "MEML-GRPO methods" in capsys.readouterr().out


def test_reports_name_a_config_that_does_not_match_the_results(tmp_path, capsys):
    from meml.pipeline.settings import write_resolved_config

    made = settings_from_config({"results_dir": str(tmp_path), "seeds": [0]})
    assert main(["reports", "--config", str(tmp_path / "nothing.yaml")]) == 2  # no such file
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({"results_dir": str(tmp_path)}))
    assert main(["reports", "--config", str(other)]) == 2
    assert "no workflow run wrote to results_dir" in capsys.readouterr().err
    write_resolved_config(made, tmp_path / "config.yaml")
    assert main(["reports", "--config", str(other)]) == 2
    err = capsys.readouterr().err
    assert "does not match the results" in err and "differs in ['seeds']" in err and "config.yaml" in err


def test_cli_reports_a_bad_config_file(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("sft: {stpes: 3}\n")
    assert main(["check-config", "--config", str(bad)]) == 2
    assert "sft: Additional properties are not allowed ('stpes'" in capsys.readouterr().err


def _snakemake(*args, cwd=REPO_ROOT):
    return subprocess.run(SNAKEMAKE + list(args), cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_dry_run_lists_the_plan(tmp_path):
    done = _snakemake("-n", "--cores", "2", "--config", f"results_dir={tmp_path}")
    assert done.returncode == 0, done.stderr
    out = done.stdout + done.stderr
    # 2 families x 3 datasets x 3 seeds = 18 (family, dataset, seed) units
    for rule, count in (("make_world", 1), ("build_tiny", 2), ("pretrain", 2), ("experts", 3), ("sft", 6),
                        ("evaluate", 6), ("rl", 54), ("evaluate_GRPO", 18),
                        ("evaluate_DrGRPO", 18), ("evaluate_DAPO", 18), ("riel", 18), ("evaluate_meml", 18),
                        ("table4", 1), ("table5", 1), ("table6", 1), ("sample", 6), ("complementarity", 1),
                        ("world_check", 6), ("world_check_table", 1), ("figure2", 1), ("sparsity", 1)):
        assert f"{rule} " in out and any(line.split() == [rule, str(count)] for line in out.splitlines()), rule
    assert "localrules directive" not in out  # every rule named local exists in this configuration


@pytest.mark.slow
def test_seeds_from_the_command_line(tmp_path):
    done = _snakemake("-n", "--cores", "2", "--config", f"results_dir={tmp_path}", "seeds=[0,1]")
    assert done.returncode == 0, done.stderr[-2000:]
    assert any(line.split() == ["rl", "36"] for line in done.stdout.splitlines())  # 2 families x 3 datasets x 2 seeds x 3
    assert any(line.split() == ["sft", "6"] for line in done.stdout.splitlines())  # shared by the seeds


@pytest.mark.slow
def test_all_starts_overlay_plans_every_rl_run(tmp_path):
    done = _snakemake("-n", "--cores", "2", "--configfile", "workflow/config/rl_all_starts.yaml",
                      "--config", f"results_dir={tmp_path}")
    assert done.returncode == 0, done.stderr[-2000:]
    for method in ("Expert0-SFT-DAPO", "Expert2-SFT-Dr.GRPO", "MoE-SFT-GRPO"):
        assert f"/{method}/seed0/expert" in done.stdout


@pytest.mark.slow
def test_dry_run_refuses_a_misspelled_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"results_dir": str(tmp_path), "sft": {"lerning_rate": 1}}))
    done = _snakemake("-n", "--cores", "1", "--configfile", str(bad))
    assert done.returncode != 0
    assert "lerning_rate" in done.stdout + done.stderr


MINI = {
    "seeds": [0],
    "datasets": ["synth_gsm8k", "synth_strategyqa"],
    "world": {"seed": 0, "splits": {"pretrain": 48, "train": 24, "rl": 12, "test": 9, "dev": 9},
              "difficulty": {"min_steps": 2, "max_steps": 2}},
    "models": {"families": ["qwen2"], "pretrained": {"qwen2": None, "llama": None},
               "tiny": {"vocab_size": 400, "hidden_size": 32, "num_layers": 1, "num_heads": 2, "num_kv_heads": 1,
                        "intermediate_size": 64, "max_position_embeddings": 256},
               "pretrain": {"steps": 3, "batch_size": 8, "learning_rate": 1e-3, "warmup_ratio": 0.0,
                            "max_length": 192, "seed": 0, "drill_rows": 8}},
    "sft": {"methods": ["Expert0-SFT", "Expert1-SFT", "MoE-SFT"], "steps": 2, "batch_size": 4, "learning_rate": 1e-3,
            "lr_scheduler_type": "constant", "warmup_ratio": 0.0, "max_length": 192, "assistant_only_loss": True},
    "rl": {"methods": ["Expert1-SFT-GRPO", "MoE-SFT-DAPO"], "steps": 2, "prompts_per_step": 2, "num_generations": 2,
           "max_completion_length": 12, "save_steps": 1, "algorithms": {"DAPO": {"max_sampling_rounds": 2}}},
    "meml": {"methods": ["MEML-GRPO", "MEML-GRPO-Expert1-noHSFT-noIML"], "questions_per_step": 1,
             "buffer_k": 0, "buffer_capacity": 2, "buffer_probability": "always"},
    "eval": {"max_new_tokens": 12, "batch_size": 16},
    "complementarity": {"samples": 2, "temperature": 1.0, "max_items": 5, "experts": None},
}


@pytest.mark.slow
def test_workflow_runs_end_to_end_and_resumes(tmp_path):
    config = tmp_path / "mini.yaml"
    config.write_text(yaml.safe_dump({**MINI, "results_dir": str(tmp_path / "results")}))
    done = _snakemake("--cores", "2", "--configfile", str(config))
    assert done.returncode == 0, done.stderr[-4000:]
    table = (tmp_path / "results" / "tables" / "table4.md").read_text()
    for row in ("| Expert1-SFT |", "| MoE-SFT (Expert0) |", "| MoE-SFT (Expert1) |", "| MoE-SFT (Expert2) |",
                "| Expert1-SFT-GRPO |", "| MoE-SFT-DAPO (Expert2) |"):
        assert row in table
    run = tmp_path / "results" / "rl" / "qwen2" / "synth_strategyqa" / "MoE-SFT-DAPO" / "seed0"
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    assert not (tmp_path / "results" / "rl_work").exists() or not any((tmp_path / "results" / "rl_work").rglob("*.pt"))
    assert "GSM8K" in table and "StrategyQA" in table and "NOT the paper's numbers" in table
    assert "| MEML-GRPO (Expert1) |" in table and "noHSFT" not in table
    table5 = (tmp_path / "results" / "tables" / "table5.md").read_text()
    assert "| MEML-GRPO | on | on | on |" in table5 and "| MEML-GRPO-Expert1-noHSFT-noIML | off | off | off |" in table5
    table6 = (tmp_path / "results" / "tables" / "table6.md").read_text()
    assert "| MEML-GRPO (majority vote) |" in table6 and "| MoE-SFT-DAPO (majority vote) |" in table6
    meml_log = (tmp_path / "results" / "rl" / "qwen2" / "synth_gsm8k" / "MEML-GRPO" / "seed0" / "metrics.jsonl")
    assert {"mutual_questions", "buffer_size", "reward_expert2"} <= set(json.loads(meml_log.read_text().splitlines()[0]))
    result = json.loads((tmp_path / "results" / "eval" / "qwen2" / "synth_gsm8k" / "MoE-SFT" / "shared" /
                         "expert2.json").read_text())
    assert result["n"] == 9 and result["expert"] == 2 and result["seed"] == 0
    assert {"config", "versions", "git_commit"} <= set(result)
    samples = (tmp_path / "results" / "eval" / "qwen2" / "synth_gsm8k" / "MoE-SFT" / "shared" /
               "expert2.samples.jsonl").read_text().splitlines()
    assert len(samples) == 9
    again = _snakemake("-n", "--cores", "2", "--configfile", str(config))
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
    results = tmp_path / "results"
    complementarity = (results / "tables" / "complementarity.md").read_text()
    assert "Expert0" in complementarity and "Expert1" in complementarity
    for name in ("figure2.png", "figure2.pdf", "figure2_qwen2.png", "sparsity.png"):
        assert (results / "figures" / name).stat().st_size > 1000, name
    # deleting one figure rebuilds only it
    (results / "figures" / "sparsity.png").unlink()
    rebuilt = _snakemake("--cores", "1", "--configfile", str(config))
    assert rebuilt.returncode == 0, rebuilt.stderr[-2000:]
    jobs = [line.split() for line in (rebuilt.stdout + rebuilt.stderr).splitlines()]
    assert ["sparsity", "1"] in jobs and not any(j[:1] in (["figure2"], ["table4"], ["riel"]) and j[1:] == ["1"]
                                                  for j in jobs)
    assert (results / "figures" / "sparsity.png").exists()
    # the self-contained HTML report holds the tables and figures
    report = _snakemake("--configfile", str(config), "--report", str(results / "report.html"))
    assert report.returncode == 0, report.stderr[-2000:]
    assert (results / "report.html").stat().st_size > 10_000
    # every table and figure again from the existing results, in one command
    resolved = results / "config.yaml"
    done = subprocess.run([sys.executable, "-m", "meml", "reports", "--config", str(resolved)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    for table in ("table4", "table5", "table6", "complementarity"):
        assert f"tables/{table}.md" in done.stderr
    # the rerun rule: an evaluation-only change, then added methods, retrain nothing that exists
    models = {p: p.stat().st_mtime_ns for p in results.rglob("model.safetensors")}
    assert len(models) >= 10
    changed = {**MINI, "results_dir": str(results), "eval": {**MINI["eval"], "max_new_tokens": 10},
               "data": {"max_test_items": 8}}
    changed_file = tmp_path / "changed.yaml"
    changed_file.write_text(yaml.safe_dump(changed))
    training = {"make_world", "experts", "build_tiny", "pretrain", "sft", "rl", "riel"}
    plan = _planned(_snakemake("-n", "--cores", "2", "--configfile", str(changed_file)))
    assert not plan.keys() & training and {"evaluate", "evaluate_GRPO", "evaluate_meml", "sample"} <= plan.keys()
    added = {**changed, "rl": {**MINI["rl"], "methods": [*MINI["rl"]["methods"], "MoE-SFT-GRPO"]},
             "meml": {**MINI["meml"], "methods": [*MINI["meml"]["methods"], "MEML-GRPO-noIML"]}}
    changed_file.write_text(yaml.safe_dump(added))
    plan = _planned(_snakemake("-n", "--cores", "2", "--configfile", str(changed_file)))
    assert not plan.keys() & {"make_world", "experts", "build_tiny", "pretrain", "sft"}
    assert plan["riel"] == 2 and plan["rl"] == 2  # the MEML-GRPO job (which keeps its finished run), the GRPO job
    done = _snakemake("--cores", "2", "--configfile", str(changed_file))
    assert done.returncode == 0, done.stderr[-4000:]
    assert {p: p.stat().st_mtime_ns for p in models} == models  # every model trained before is untouched
    assert (results / "rl" / "qwen2" / "synth_gsm8k" / "MEML-GRPO-noIML" / "seed0" / "model.safetensors").exists()
    assert (results / "rl" / "qwen2" / "synth_gsm8k" / "MoE-SFT-GRPO" / "seed0" / "model.safetensors").exists()


def _planned(done) -> dict[str, int]:
    """Jobs per rule of a ``snakemake -n`` plan."""
    assert done.returncode == 0, done.stderr[-4000:]
    counts = {}
    for line in (done.stdout + done.stderr).splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
            counts[parts[0]] = int(parts[1])
    return counts


def _rl_job_pids(results):
    """Process ids of running ``meml rl`` jobs of the workflow writing to ``results``."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"rl" in command and b"meml" in command and any(str(results).encode() in part for part in command):
            pids.append(int(proc.name))
    return pids


@pytest.mark.slow
def test_a_killed_rl_job_resumes_when_snakemake_runs_again(tmp_path):
    import os
    import signal
    import time

    from meml.training.rl import last_checkpoint

    results = tmp_path / "results"
    mini = {**MINI, "datasets": ["synth_gsm8k"], "results_dir": str(results),
            "sft": {**MINI["sft"], "methods": ["Expert1-SFT"]}, "meml": {**MINI["meml"], "methods": []},
            "rl": {**MINI["rl"], "methods": ["Expert1-SFT-GRPO"], "steps": 8, "save_steps": 2,
                   "max_completion_length": 48, "prompts_per_step": 4, "num_generations": 4}}
    config = tmp_path / "mini.yaml"
    config.write_text(yaml.safe_dump(mini))
    trainer_dir = results / "rl_work" / "qwen2" / "synth_gsm8k" / "Expert1-SFT-GRPO" / "seed0" / "trainer"
    process = subprocess.Popen(SNAKEMAKE + ["--cores", "1", "--configfile", str(config)], cwd=REPO_ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 400
    while time.time() < deadline and process.poll() is None and last_checkpoint(trainer_dir) is None:
        time.sleep(0.05)
    pids = _rl_job_pids(results)
    assert process.poll() is None and pids, "the workflow ended before a checkpoint could be killed"
    for pid in pids:  # the RL job dies as under the OOM killer; Snakemake sees a failed job and stops
        os.kill(pid, signal.SIGKILL)
    assert process.wait(timeout=120) != 0
    killed_at = int(last_checkpoint(trainer_dir).name.split("-")[1])
    run = results / "rl" / "qwen2" / "synth_gsm8k" / "Expert1-SFT-GRPO" / "seed0"
    assert killed_at < 8 and not (run / "run.json").exists()
    done = _snakemake("--cores", "1", "--configfile", str(config))
    assert done.returncode == 0, done.stderr[-4000:]
    saved = json.loads((run / "run.json").read_text())
    assert saved["metrics"]["resumed_from_step"] >= killed_at > 0 and saved["metrics"]["steps"] == 8
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == list(range(1, 9))


@pytest.mark.slow
def test_paper_config_dry_runs_offline_to_the_full_plan(tmp_path):
    """workflow/config/paper.yaml lists the whole paper setting without the hub, GPUs or API keys."""
    done = _snakemake("-n", "-p", "--cores", "8", "--configfile", "workflow/config/paper.yaml",
                      "--config", f"results_dir={tmp_path}")
    assert done.returncode == 0, done.stderr
    out = done.stdout + done.stderr
    # 2 families x 3 datasets x 1 seed; teachers: 2 LLM experts x 3 datasets; RL: 3 algorithms; MEML: 5 Table 5 rows
    for rule, count in (("teacher", 6), ("experts", 3), ("sft", 6), ("evaluate", 6), ("rl", 18), ("evaluate_GRPO", 6),
                        ("evaluate_DrGRPO", 6), ("evaluate_DAPO", 6), ("riel", 30), ("evaluate_meml", 6),
                        ("sample", 6), ("complementarity", 1), ("table4", 1), ("table5", 1), ("table6", 1),
                        ("figure2", 1), ("sparsity", 1)):
        assert any(line.split() == [rule, str(count)] for line in out.splitlines()), rule
    assert "localrules directive" not in out  # no local rule that this configuration does not define
    for rule in ("make_world", "build_tiny", "pretrain", "world_check"):  # hub models and datasets: nothing tiny
        assert not any(line.split()[:1] == [rule] for line in out.splitlines()), rule
    launch = '-m accelerate.commands.launch --config_file "workflow/accelerate/ddp.yaml" --num_processes 8 -m meml'
    for stage in ("sft", "rl", "riel"):
        assert f"{launch} {stage} --config" in out, stage
    assert "-m meml evaluate --config" in out and "-m meml teacher --config" in out
    # training: the node for 24 h (a common partition limit); evaluation: the node for 4 h; API teachers: no GPU
    assert "gpu=8, runtime=1440" in out and "gpu=8, runtime=240" in out
    assert "gpu=0, cpus_per_task=2, runtime=1440, mem_mb=4000" in out
    assert not (tmp_path / "config.yaml").exists()  # a dry run writes nothing (the jobs' config is written at start)
    config = load_settings(REPO_ROOT / "workflow" / "config" / "paper.yaml")
    assert config.setting == "paper" and config.models.pretrained["qwen2"] == "Qwen/Qwen2.5-Math-1.5B"
    assert (config.rl.learning_rate, config.rl.num_generations, config.rl.epochs) == (1e-6, 8, 1)
    assert (config.sft.learning_rate, config.sft.epochs) == (1e-5, 1)
    assert [s["kind"] for s in config.experts.sources] == ["gold", "openai", "openai"]
    assert config.experts.filter_incorrect is True


@pytest.mark.slow
def test_slurm_profile_sizes_jobs_from_the_rule_resources(tmp_path):
    profile = yaml.safe_load((REPO_ROOT / "workflow" / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["executor"] == "slurm" and profile["default-resources"]["tasks_per_gpu"] == 0
    assert profile["default-resources"]["nodes"] == 1  # 8 GPUs of one job never split over nodes
    paper = (REPO_ROOT / "workflow" / "config" / "paper.yaml").read_text()
    assert "snakemake --cores all --resources gpu=8 --configfile workflow/config/paper.yaml" in paper  # one node
    from importlib.util import find_spec

    if find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.skip("the slurm extra (snakemake-executor-plugin-slurm) is not installed")
    done = _snakemake("-n", "--profile", "workflow/profiles/slurm", "--configfile", "workflow/config/paper.yaml",
                      "--config", f"results_dir={tmp_path}")
    assert done.returncode == 0, done.stderr
