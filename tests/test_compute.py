"""Where jobs run (meml/compute.py) and the options the paper setting needs: epochs, gradient accumulation,
prompt/completion SFT masks, vLLM and accelerate settings, multi-process training."""

import copy
import json
import os
import subprocess
import sys

import pytest
import torch

from baselines.rl_config import RLRunConfig
from meml.compute import ComputeConfig
from meml.config import ConfigError, load_config, validate_config
from tests.conftest import REPO_ROOT

PAPER_GPU = {"device": "cuda", "precision": "bf16", "launcher": "accelerate", "accelerate_config": "a.yaml",
             "num_processes": 8}


def test_defaults_are_one_cpu_process():
    compute = ComputeConfig.from_config(load_config())
    assert compute == ComputeConfig()
    assert compute.trainer_args() == {"use_cpu": True, "bf16": False, "activation_checkpointing": False}
    assert compute.grpo_args() == {"use_vllm": False}
    assert compute.launch_command("py") == '"py" -m meml'
    assert compute.eval_dtype() == "float32"


def test_gpu_settings_translate_to_trl_and_accelerate():
    compute = ComputeConfig.from_config({"compute": {**PAPER_GPU, "gradient_checkpointing": True,
                                                     "vllm": {"rollouts": True, "gpu_memory_utilization": 0.4}}})
    assert compute.trainer_args() == {"use_cpu": False, "bf16": True, "activation_checkpointing": True}
    assert compute.grpo_args() == {"use_vllm": True, "vllm_mode": "colocate", "vllm_gpu_memory_utilization": 0.4,
                                   "vllm_tensor_parallel_size": 1}
    assert compute.launch_command("py") == ('"py" -m accelerate.commands.launch --config_file "a.yaml" '
                                            "--num_processes 8 -m meml")
    server = ComputeConfig(device="cuda", vllm_rollouts=True, vllm_mode="server", vllm_server_base_url="http://h:8000")
    assert server.grpo_args() == {"use_vllm": True, "vllm_mode": "server", "vllm_server_base_url": "http://h:8000"}
    assert ComputeConfig(device="cuda", precision="bf16").eval_dtype() == "bfloat16"


@pytest.mark.parametrize("settings, message", [
    ({"precision": "bf16"}, "compute.precision bf16 needs compute.device cuda"),
    ({"vllm": {"rollouts": True}}, "compute.vllm_rollouts needs compute.device cuda"),
    ({"eval_backend": "vllm"}, "compute.eval_backend vllm needs compute.device cuda"),
    ({"device": "cuda", "vllm": {"rollouts": True, "mode": "server"}}, "compute.vllm_mode server needs"),
    ({"launcher": "accelerate"}, "compute.launcher accelerate needs compute.accelerate_config"),
    ({"num_processes": 2}, "compute.num_processes > 1 needs compute.launcher accelerate"),
    ({"device": "tpu"}, "compute.device: expected one of ('cpu', 'cuda')"),
    ({"gpus": 1}, "compute: unknown setting(s) ['gpus']"),
])
def test_bad_compute_settings_name_the_key(settings, message):
    with pytest.raises(ValueError, match=__import__("re").escape(message)):
        ComputeConfig.from_config({"compute": settings})


def test_config_errors_name_the_file_and_key():
    config = copy.deepcopy(load_config())
    config["compute"]["precision"] = "bf16"
    with pytest.raises(ConfigError, match=r"my\.yaml: compute\.precision bf16 needs compute\.device cuda"):
        validate_config(config, "my.yaml")
    config = copy.deepcopy(load_config())
    config["compute"].update(launcher="accelerate", accelerate_config="workflow/accelerate/ddp.yaml", num_processes=5)
    with pytest.raises(ConfigError, match=r"48 completions per step .* do not split over 5 process\(es\)"):
        validate_config(config, "my.yaml")
    config = copy.deepcopy(load_config())  # 48 rollouts split over 4 GPUs, but MEML's 2 questions a step do not
    config["compute"].update(launcher="accelerate", accelerate_config="workflow/accelerate/ddp.yaml", num_processes=4)
    with pytest.raises(ConfigError, match=r"meml.methods: MEML-GRPO samples 2 questions a step, which do not split "
                                          r"over compute.num_processes 4"):
        validate_config(config, "my.yaml")
    config["compute"]["num_processes"] = 2
    validate_config(config, "my.yaml")
    config = copy.deepcopy(load_config())
    config["rl"]["gradient_accumulation_steps"] = 2
    with pytest.raises(ConfigError, match=r"meml.methods: MEML-GRPO: .*rl.gradient_accumulation_steps must be 1"):
        validate_config(config, "my.yaml")


def test_epochs_set_the_steps_from_the_rows():
    run = RLRunConfig.for_algorithm("GRPO", {"epochs": 1, "prompts_per_step": 32, "steps": 5})
    assert run.for_rows(7473).steps == 234  # ceil(7473 / 32): GSM8K's train split, one pass
    assert run.for_rows(3 * 7473).steps == 701  # MoE start: every question under 3 prompts
    assert RLRunConfig.for_algorithm("GRPO", {"epochs": 0.5, "prompts_per_step": 4}).for_rows(10).steps == 2
    assert RLRunConfig.for_algorithm("GRPO", {"steps": 5}).for_rows(1000).steps == 5  # no epochs: unchanged
    with pytest.raises(ValueError, match="rl.epochs must be > 0"):
        RLRunConfig.for_algorithm("GRPO", {"epochs": 0})


def test_micro_batches_split_the_step_over_processes_and_accumulation(tmp_path):
    run = RLRunConfig.for_algorithm("GRPO", {"prompts_per_step": 4, "num_generations": 4,
                                             "gradient_accumulation_steps": 2})
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


def test_accumulated_micro_batches_train_the_configured_steps(tiny_model_dir, small_world, tmp_path):
    from safetensors.torch import load_file

    from baselines.rl import train_rl
    from baselines.rl_log import read_log

    run = RLRunConfig.for_algorithm("GRPO", {"steps": 2, "prompts_per_step": 2, "num_generations": 4,
                                             "max_completion_length": 12, "gradient_accumulation_steps": 2,
                                             "learning_rate": 1e-2, "save_steps": 5})
    metrics = train_rl(tiny_model_dir, _rows(small_world), "gsm8k", run, tmp_path / "out", tmp_path / "work")
    assert metrics["steps"] == 2 and metrics["num_processes"] == 1
    assert [r["step"] for r in read_log(tmp_path / "out" / "metrics.jsonl")] == [1, 2]
    before, after = load_file(tiny_model_dir / "model.safetensors"), load_file(tmp_path / "out" / "model.safetensors")
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_rl_epochs_resolve_against_the_run_rows(tiny_model_dir, small_world, tmp_path):
    from baselines.rl import train_rl

    run = RLRunConfig.for_algorithm("GRPO", {"epochs": 1, "steps": 99, "prompts_per_step": 4, "num_generations": 2,
                                             "max_completion_length": 8, "save_steps": 5})
    metrics = train_rl(tiny_model_dir, _rows(small_world, n=6), "gsm8k", run, tmp_path / "out", tmp_path / "work")
    assert metrics["steps"] == 2  # ceil(6 rows / 4 prompts a step)
    saved = json.loads((tmp_path / "out" / "run.json").read_text())
    assert saved["settings"]["epochs"] == 1 and saved["settings"]["steps"] == 2


def test_prompt_completion_rows_keep_the_answer_apart():
    from baselines.sft import prompt_completion_rows
    from meml.prompts import conversation

    rows = prompt_completion_rows([{"messages": conversation("Q?", "A. #### 1", "You are Expert 1.")}])
    assert rows == [{"prompt": [{"role": "system", "content": "You are Expert 1."}, {"role": "user", "content": "Q?"}],
                     "completion": [{"role": "assistant", "content": "A. #### 1"}]}]
    with pytest.raises(ValueError, match="does not end with an assistant message"):
        prompt_completion_rows([{"messages": [{"role": "user", "content": "Q?"}]}])


def _sft_rows(small_world, n=16):
    from baselines.sft import conversations
    from meml.data import load_records

    records = load_records("synth_gsm8k", "train", small_world)[:n]
    return conversations([r.question for r in records], [r.rationale for r in records], "You are Expert 0.")


@pytest.mark.parametrize("answer_mask", ["chat_template", "prompt_completion"])
def test_both_answer_masks_train_on_the_answer_only(answer_mask, tiny_model_dir, small_world, tmp_path):
    """Both ways of masking give the same labels: the answer and its end-of-turn token, nothing of the prompt."""
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer
    from datasets import Dataset

    from baselines.sft import prompt_completion_rows

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


def test_sft_epochs_and_prompt_completion_mask(tiny_model_dir, small_world, tmp_path):
    from safetensors.torch import load_file

    from baselines.sft import SFTRunConfig, train_sft

    run = SFTRunConfig(steps=999, num_train_epochs=1, batch_size=8, gradient_accumulation_steps=2,
                       answer_mask="prompt_completion", learning_rate=1e-2, warmup_ratio=0.0)
    metrics = train_sft(tiny_model_dir, _sft_rows(small_world), run, tmp_path / "out")
    assert metrics["steps"] == 2 and metrics["num_processes"] == 1  # 16 rows, one epoch, global batch 8
    assert not (tmp_path / ".out.trainer").exists() and not (tmp_path / ".out.saving").exists()
    before, after = load_file(tiny_model_dir / "model.safetensors"), load_file(tmp_path / "out" / "model.safetensors")
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert json.loads((tmp_path / "out" / "run.json").read_text())["settings"]["answer_mask"] == "prompt_completion"
    with pytest.raises(ValueError, match=r"sft.batch_size 8 does not split over 1 process\(es\) x "
                                         r"gradient_accumulation_steps 3"):
        train_sft(tiny_model_dir, _sft_rows(small_world), SFTRunConfig(batch_size=8, gradient_accumulation_steps=3),
                  tmp_path / "bad")


def test_vllm_evaluation_needs_the_gpu_extra(tmp_path):
    from importlib.util import find_spec

    from meml.evaluation import load_lm

    if find_spec("vllm") is not None:
        pytest.skip("vllm is installed")
    with pytest.raises(ImportError, match=r"pip install 'meml-grpo\[gpu\]'"):
        load_lm(tmp_path, 8, ComputeConfig(device="cuda", eval_backend="vllm"))


TORCHRUN_SCRIPT = """
import json, sys
from baselines.rl import rl_rows, train_rl
from baselines.rl_config import RLRunConfig
from meml.data import load_records
from meml.riel_config import MEMLConfig
from meml.trainer import meml_rows, trainer_builder

model, world, out, method = sys.argv[1:5]
records = load_records("synth_gsm8k", "train", world)[:12]
prompts = ["P0", "P1", "P2"]
common = {"steps": 2, "prompts_per_step": 6, "num_generations": 4, "max_completion_length": 8, "save_steps": 1}
if method == "MEML-GRPO":
    settings = MEMLConfig.for_method(method, {"buffer_k": 1, "buffer_capacity": 2, "buffer_probability": "always"})
    run = settings.grpo_run(RLRunConfig.for_algorithm("GRPO", common), 3)
    metrics = train_rl(model, meml_rows(records), "gsm8k", run, out + "/run", out + "/work",
                       build=trainer_builder(settings, prompts))
else:
    run = RLRunConfig.for_algorithm(method, common)
    metrics = train_rl(model, rl_rows(records, [0, 1, 2], prompts), "gsm8k", run, out + "/run", out + "/work")
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
    from baselines.grpo_trainers import DAPOTrainer

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
