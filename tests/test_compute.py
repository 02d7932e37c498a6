"""Where jobs run (meml/training/compute.py) and the options the paper setting needs: epochs, gradient accumulation,
prompt/completion SFT masks, vLLM and accelerate settings, multi-process training."""

import json
import os
import re
import subprocess
import sys

import pytest
import torch

from meml.fields import ConfigError
from meml.pipeline.settings import load_settings, settings_from_config
from meml.training.compute import ComputeConfig, VLLMConfig
from meml.training.rl_config import RLConfig
from meml.training.trl_compat import checkpointing_field
from tests.conftest import REPO_ROOT

PAPER_GPU = {"device": "cuda", "precision": "bf16", "launcher": "accelerate", "accelerate_config": "a.yaml",
             "num_processes": 8}


def test_defaults_are_one_cpu_process():
    compute = load_settings().compute
    assert compute == ComputeConfig() and compute.vllm == VLLMConfig()
    assert compute.trainer_args() == {"use_cpu": True, "bf16": False, checkpointing_field(): False}
    assert compute.grpo_args() == {"use_vllm": False}
    assert compute.launch_command("py") == '"py" -m meml'
    assert compute.eval_dtype() == "float32"


def test_gpu_settings_translate_to_trl_and_accelerate():
    settings = settings_from_config({
        "compute": {**PAPER_GPU, "gradient_checkpointing": True, "vllm": {"rollouts": True, "gpu_memory_utilization": 0.4}},
        "meml": {"questions_per_step": 8}})  # whole questions on each of the 8 processes
    compute = settings.compute
    assert compute.vllm == VLLMConfig(rollouts=True, gpu_memory_utilization=0.4)
    assert compute.trainer_args() == {"use_cpu": False, "bf16": True, checkpointing_field(): True}
    assert compute.grpo_args() == {"use_vllm": True, "vllm_mode": "colocate", "vllm_gpu_memory_utilization": 0.4,
                                   "vllm_tensor_parallel_size": 1}
    assert compute.launch_command("py") == ('"py" -m accelerate.commands.launch --config_file "a.yaml" '
                                            "--num_processes 8 -m meml")
    server = ComputeConfig(device="cuda", vllm=VLLMConfig(rollouts=True, mode="server", server_base_url="http://h:8000"))
    assert server.grpo_args() == {"use_vllm": True, "vllm_mode": "server", "vllm_server_base_url": "http://h:8000"}
    assert ComputeConfig(device="cuda", precision="bf16").eval_dtype() == "bfloat16"


@pytest.mark.parametrize("settings, message", [
    ({"precision": "bf16"}, "compute.precision bf16 needs compute.device cuda"),
    ({"vllm": {"rollouts": True}}, "compute.vllm.rollouts needs compute.device cuda"),
    ({"eval_backend": "vllm"}, "compute.eval_backend vllm needs compute.device cuda"),
    ({"device": "cuda", "vllm": {"rollouts": True, "mode": "server"}}, "compute.vllm.mode server needs"),
    ({"launcher": "accelerate"}, "compute.launcher accelerate needs compute.accelerate_config"),
    ({"num_processes": 2}, "compute.num_processes > 1 needs compute.launcher accelerate"),
    ({"device": "tpu"}, "compute.device: 'tpu' is not one of ['cpu', 'cuda']"),
    ({"gpus": 1}, "compute: Additional properties are not allowed ('gpus' was unexpected)"),
    ({"vllm_rollouts": True}, "compute: Additional properties are not allowed ('vllm_rollouts' was unexpected)"),
    ({"vllm": {"rollout": True}}, "compute.vllm: Additional properties are not allowed ('rollout' was unexpected)"),
    ({"vllm": {"gpu_memory_utilization": 1.5}}, "compute.vllm.gpu_memory_utilization: 1.5 is greater than the maximum"),
])
def test_bad_compute_settings_name_the_key(settings, message):
    with pytest.raises(ConfigError, match="my.yaml: (?s:.*)" + re.escape(message)):
        settings_from_config({"compute": settings}, "my.yaml")


@pytest.mark.parametrize("fields, message", [
    ({"device": "tpu"}, "compute.device: expected one of ['cpu', 'cuda']"),
    ({"vllm": VLLMConfig(rollouts=True)}, "compute.vllm.rollouts needs compute.device cuda"),
])
def test_compute_dataclasses_check_themselves(fields, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        ComputeConfig(**fields)


def test_vllm_settings_check_themselves():
    with pytest.raises(ValueError, match=re.escape("compute.vllm.gpu_memory_utilization: must be <= 1")):
        VLLMConfig(gpu_memory_utilization=1.5)
    with pytest.raises(ValueError, match=re.escape("compute.vllm.mode: expected one of ['colocate', 'server']")):
        VLLMConfig(mode="remote")


def test_config_errors_name_the_file_and_key(tmp_path):
    path = tmp_path / "my.yaml"
    path.write_text("compute:\n  precision: bf16\n")
    with pytest.raises(ConfigError, match=r"my\.yaml: (compute: )?compute\.precision bf16 needs compute\.device cuda"):
        load_settings(path)
    ddp = {"launcher": "accelerate", "accelerate_config": "workflow/accelerate/ddp.yaml"}
    with pytest.raises(ConfigError, match=r"my\.yaml: .*48 completions per step .* do not split over 5 process\(es\)"):
        settings_from_config({"compute": {**ddp, "num_processes": 5}}, "my.yaml")
    # 48 rollouts split over 4 GPUs, but MEML's 2 questions a step do not
    with pytest.raises(ConfigError, match=r"my\.yaml: meml.methods: MEML-GRPO samples 2 questions a step, which do "
                                          r"not split over compute.num_processes 4"):
        settings_from_config({"compute": {**ddp, "num_processes": 4}}, "my.yaml")
    assert settings_from_config({"compute": {**ddp, "num_processes": 2}}, "my.yaml").compute.num_processes == 2
    with pytest.raises(ConfigError, match=r"my\.yaml: meml.methods: MEML-GRPO: .*rl.gradient_accumulation_steps "
                                          r"must be 1"):
        settings_from_config({"rl": {"gradient_accumulation_steps": 2}}, "my.yaml")


def test_epochs_set_the_steps_from_the_rows():
    run = RLConfig(algorithm="GRPO", epochs=1, prompts_per_step=32, steps=5)
    assert run.for_rows(7473).steps == 234  # ceil(7473 / 32): GSM8K's train split, one pass
    assert run.for_rows(3 * 7473).steps == 701  # MoE start: every question under 3 prompts
    assert RLConfig(algorithm="GRPO", epochs=0.5, prompts_per_step=4).for_rows(10).steps == 2
    assert RLConfig(algorithm="GRPO", steps=5).for_rows(1000).steps == 5  # no epochs: unchanged
    with pytest.raises(ValueError, match="rl.epochs: must be > 0"):
        RLConfig(algorithm="GRPO", epochs=0)


def test_micro_batches_split_the_step_over_processes_and_accumulation(tmp_path):
    run = RLConfig(algorithm="GRPO", prompts_per_step=4, num_generations=4, gradient_accumulation_steps=2)
    args = run.grpo_config(tmp_path)
    # one generation round of 16 completions per optimizer step, trained in 2 slices of 8
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps, args.steps_per_generation) == (8, 2, 2)
    assert args.generation_batch_size == 16
    assert run.per_device_batch(num_processes=2) == 4
    with pytest.raises(ValueError, match=r"16 completions per step .* do not split over 3 process\(es\)"):
        run.per_device_batch(num_processes=3)


def _rows(small_world, n=8):
    from baselines.rl import rl_rows
    from meml.data import load_records

    return rl_rows(load_records("synth_gsm8k", "train", small_world)[:n], [0], ["P0"])


@pytest.mark.slow
def test_accumulated_micro_batches_train_the_configured_steps(tiny_model_dir, small_world, tmp_path):
    from safetensors.torch import load_file

    from meml.training.rl import train_rl
    from meml.training.rl_log import read_log
    from tests.test_rl import builder, length_reward

    run = RLConfig(algorithm="GRPO", steps=2, prompts_per_step=2, num_generations=4, max_completion_length=12,
                   gradient_accumulation_steps=2, learning_rate=1e-2, save_steps=5)
    # a reward that varies within groups even for a random model (the task's accuracy is all zero there)
    metrics = train_rl(tiny_model_dir, _rows(small_world), "gsm8k", run, tmp_path / "out", tmp_path / "work",
                       build=builder(length_reward))
    assert metrics["steps"] == 2 and metrics["num_processes"] == 1
    assert [r["step"] for r in read_log(tmp_path / "out" / "metrics.jsonl")] == [1, 2]
    before, after = load_file(tiny_model_dir / "model.safetensors"), load_file(tmp_path / "out" / "model.safetensors")
    assert any(not torch.equal(before[k], after[k]) for k in before)


@pytest.mark.slow
def test_rl_epochs_resolve_against_the_run_rows(tiny_model_dir, small_world, tmp_path):
    from baselines.rl import build_trainer
    from meml.training.rl import train_rl

    run = RLConfig(algorithm="GRPO", epochs=1, steps=99, prompts_per_step=4, num_generations=2,
                   max_completion_length=8, save_steps=5)
    metrics = train_rl(tiny_model_dir, _rows(small_world, n=6), "gsm8k", run, tmp_path / "out", tmp_path / "work",
                       build=build_trainer)
    assert metrics["steps"] == 2  # ceil(6 rows / 4 prompts a step)
    saved = json.loads((tmp_path / "out" / "run.json").read_text())
    assert saved["settings"]["epochs"] == 1 and saved["settings"]["steps"] == 2


def test_prompt_completion_rows_keep_the_answer_apart():
    from meml.prompts import conversation
    from meml.training.sft import prompt_completion_rows

    rows = prompt_completion_rows([{"messages": conversation("Q?", "A. #### 1", "You are Expert 1.")}])
    assert rows == [{"prompt": [{"role": "system", "content": "You are Expert 1."}, {"role": "user", "content": "Q?"}],
                     "completion": [{"role": "assistant", "content": "A. #### 1"}]}]
    with pytest.raises(ValueError, match="does not end with an assistant message"):
        prompt_completion_rows([{"messages": [{"role": "user", "content": "Q?"}]}])


def _sft_rows(small_world, n=16):
    from meml.data import load_records
    from meml.training.sft import conversations

    records = load_records("synth_gsm8k", "train", small_world)[:n]
    return conversations([r.question for r in records], [r.rationale for r in records], "You are Expert 0.")


@pytest.mark.slow
@pytest.mark.parametrize("answer_mask", ["chat_template", "prompt_completion"])
def test_both_answer_masks_train_on_the_answer_only(answer_mask, tiny_model_dir, small_world, tmp_path):
    """Both ways of masking give the same labels: the answer and its end-of-turn token, nothing of the prompt."""
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from meml.training.sft import prompt_completion_rows

    rows = _sft_rows(small_world, n=2)
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    by_completion = answer_mask == "prompt_completion"
    data = Dataset.from_list(prompt_completion_rows(rows) if by_completion else rows)
    args = SFTConfig(output_dir=str(tmp_path), assistant_only_loss=not by_completion,
                     completion_only_loss=by_completion, use_cpu=True, bf16=False, report_to="none", max_length=256)
    from transformers import AutoModelForCausalLM

    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)), args=args,
                         train_dataset=data, processing_class=tokenizer)
    batch = trainer.data_collator([trainer.train_dataset[0]])
    trained = [t for t, label in zip(batch["input_ids"][0].tolist(), batch["labels"][0].tolist()) if label != -100]
    answer = rows[0]["messages"][-1]["content"]
    assert tokenizer.decode(trained).strip() == answer + "<|im_end|>"


@pytest.mark.slow
def test_sft_epochs_and_prompt_completion_mask(tiny_model_dir, small_world, tmp_path):
    from safetensors.torch import load_file

    from meml.training.sft import SFTConfig, train_sft

    run = SFTConfig(steps=999, epochs=1, batch_size=8, gradient_accumulation_steps=2,
                    answer_mask="prompt_completion", learning_rate=1e-2, warmup_ratio=0.0)
    metrics = train_sft(tiny_model_dir, _sft_rows(small_world), run, tmp_path / "out")
    assert metrics["steps"] == 2 and metrics["num_processes"] == 1  # 16 rows, one epoch, global batch 8
    assert not (tmp_path / ".out.trainer").exists() and not (tmp_path / ".out.saving").exists()
    before, after = load_file(tiny_model_dir / "model.safetensors"), load_file(tmp_path / "out" / "model.safetensors")
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert json.loads((tmp_path / "out" / "run.json").read_text())["settings"]["answer_mask"] == "prompt_completion"
    with pytest.raises(ValueError, match=r"sft.batch_size 8 does not split over 1 process\(es\) x "
                                         r"gradient_accumulation_steps 3"):
        train_sft(tiny_model_dir, _sft_rows(small_world), SFTConfig(batch_size=8, gradient_accumulation_steps=3),
                  tmp_path / "bad")


def test_vllm_evaluation_needs_the_gpu_extra(tmp_path):
    from importlib.util import find_spec

    from meml.evaluation import load_lm

    if find_spec("vllm") is not None:
        pytest.skip("vllm is installed")
    with pytest.raises(ImportError, match=r"pip install 'meml-grpo\[gpu\]'"):
        load_lm(tmp_path, 8, ComputeConfig(device="cuda", eval_backend="vllm"))


def test_vllm_evaluation_takes_memory_share_context_length_and_seed_from_compute(tmp_path, monkeypatch):
    """The vLLM evaluation backend is sized by compute (not a hard-coded 0.8 and the model's 131k context) and seeds
    its sampled requests per request (meml.vllm_backend.vllm_lm_class; tests/test_vllm_sampling.py)."""
    import importlib.util

    import meml.evaluation as evaluation
    import meml.vllm_backend as vllm_backend

    made = {}

    class FakeVLLM:
        def __init__(self, **kwargs):
            made.update(kwargs)

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "vllm" else
                        real_find_spec(name, *a))
    monkeypatch.setattr(vllm_backend, "vllm_lm_class", lambda: FakeVLLM)
    compute = ComputeConfig(device="cuda", eval_backend="vllm", gpus_per_eval_job=8, eval_gpu_memory_utilization=0.6,
                            eval_max_model_len=4096)
    lm = evaluation.load_lm(tmp_path, 8, compute, seed=1002)
    assert (made["gpu_memory_utilization"], made["max_model_len"], made["data_parallel_size"], made["seed"]) == (
        0.6, 4096, 8, 1002)
    assert lm.sampling_seed == 1002
    assert ComputeConfig().eval_max_model_len == 8192 and ComputeConfig().eval_gpu_memory_utilization == 0.8

TORCHRUN_SCRIPT = """
import json, sys
from baselines.rl import build_trainer, rl_rows
from meml.data import load_records
from meml.method.config import MEMLConfig
from meml.method.trainer import meml_rows, trainer_builder
from meml.methods import Method
from meml.training.rl import train_rl
from meml.training.rl_config import RLConfig

model, world, out, method = sys.argv[1:5]
records = load_records("synth_gsm8k", "train", world)[:12]
prompts = ["P0", "P1", "P2"]
common = {"steps": 2, "prompts_per_step": 6, "num_generations": 4, "max_completion_length": 8, "save_steps": 1}
if method == "MEML-GRPO":
    settings = MEMLConfig(buffer_k=1, buffer_capacity=2, buffer_probability="always").for_method(Method.parse(method))
    run = settings.grpo_run(RLConfig(algorithm="GRPO", **common), 3)
    metrics = train_rl(model, meml_rows(records), "gsm8k", run, out + "/run", out + "/work",
                       build=trainer_builder(settings, prompts))
else:
    run = RLConfig(algorithm=method, **common)
    metrics = train_rl(model, rl_rows(records, [0, 1, 2], prompts), "gsm8k", run, out + "/run", out + "/work",
                       build=build_trainer)
import os
with open(f"{out}/metrics.rank{os.environ['RANK']}.json", "w") as handle:
    json.dump(metrics, handle)
"""


@pytest.mark.slow
@pytest.mark.parametrize("method", ["GRPO", "DAPO", "MEML-GRPO"])
def test_two_processes_train_one_run_and_rank_zero_writes_it(method, tiny_model_dir, small_world, tmp_path):
    """The multi-GPU code path on CPU: torchrun starts 2 gloo processes; the run is written once, by rank 0.

    DAPO's dynamic sampling and MEML-GRPO's expansion to experts must keep the processes' collectives
    in step (same rounds, same batch lengths)."""
    script = tmp_path / "train.py"
    script.write_text(TORCHRUN_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(script),
                           str(tiny_model_dir), str(small_world), str(tmp_path), method],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    printed = [json.loads((tmp_path / f"metrics.rank{rank}.json").read_text()) for rank in (0, 1)]
    assert printed[1] == {}  # rank 1 leaves the writing to rank 0
    metrics = printed[0]
    assert metrics["num_processes"] == 2 and metrics["steps"] == 2
    log = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log] == [1, 2]  # one row per step, not one per process
    assert (tmp_path / "run" / "model.safetensors").exists() and not (tmp_path / "work").exists()
    assert not (tmp_path / ".run.saving").exists()
    if method == "MEML-GRPO":
        assert all(row["buffer_sft_updates"] >= 1 for row in log[1:])


class _TwoProcesses:
    """An accelerator stand-in whose gather returns this process's value and another process's."""

    def __init__(self, other: float):
        self.other, self.device = other, "cpu"

    def gather(self, tensor):
        return torch.cat([tensor, torch.tensor([self.other])])


def test_dapo_cuts_kept_groups_to_the_fewest_any_process_kept():
    from baselines.dapo import DAPOTrainer

    def part(groups, first):
        rows = torch.arange(first, first + 2 * groups, dtype=torch.float)
        return {"advantages": rows, "completion_mask": torch.ones(2 * groups, 3), "num_items_in_batch": 0}

    trainer = DAPOTrainer.__new__(DAPOTrainer)
    kept = [part(2, 0), part(3, 4)]  # 5 groups of 2 rows kept here
    trainer.accelerator = _TwoProcesses(other=3.0)  # the other process kept 3
    cut, count = trainer._equalize_across_processes(kept, 5, size=2)
    assert count == 3 and [p["advantages"].tolist() for p in cut] == [[0, 1, 2, 3], [4, 5]]
    trainer.accelerator = _TwoProcesses(other=7.0)  # the other kept more: nothing to cut here
    assert trainer._equalize_across_processes(kept, 5, size=2) == (kept, 5)
