"""Two training processes on CPU (torch.distributed, gloo): DAPO's loss normaliser and per-process checkpoint state.

Each test spawns two processes with ``torch.multiprocessing`` and the environment a launcher sets (MASTER_ADDR,
MASTER_PORT, RANK, LOCAL_RANK, WORLD_SIZE); transformers then sets up a gloo process group through accelerate,
as under ``accelerate launch --num_processes 2 --cpu``. Every process writes what it saw to
``<tmp>/rank<r>.json``; the assertions run here.
"""

import json
import os
import socket
from pathlib import Path

import pytest

WORLD = 2
G = 4  # group size
EXPERTS = ["You are Expert 0. Solve step by step.", "You are Expert 1. Solve step by step."]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(task: str, out: Path, **settings) -> list[dict]:
    """Run ``task`` on WORLD processes; return what each wrote (rank order)."""
    import torch.multiprocessing as mp

    mp.spawn(_entry, args=(task, _free_port(), str(out), settings), nprocs=WORLD, join=True)
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(WORLD)]


def _entry(rank: int, task: str, port: int, out: str, settings: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(WORLD), LOCAL_WORLD_SIZE=str(WORLD), OMP_NUM_THREADS="1",
                      HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    import torch.distributed as dist

    try:
        result = TASKS[task](rank, Path(out), **settings)
        Path(out, f"rank{rank}.json").write_text(json.dumps(result))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


# --------------------------------------------------------------------------- pieces the processes share


def _compute():
    from meml.training.compute import ComputeConfig

    return ComputeConfig(launcher="accelerate", accelerate_config="accelerate.yaml", num_processes=WORLD)


def _rows(world: str, n: int = 8) -> list[dict]:
    from baselines.rl import rl_rows
    from meml.data import load_records

    return rl_rows(load_records("synth_gsm8k", "train", Path(world))[:n], [0, 1], EXPERTS)


def position_reward(prompts, completions, **kwargs):
    """0, 1, 2, 3 by position in the group: every group varies, so dynamic sampling keeps all of them."""
    return [float(i % G) for i in range(len(completions))]


def length_reward(prompts, completions, **kwargs):
    texts = [c[0]["content"] if isinstance(c, list) else c for c in completions]
    return [float(len(t) % 2 == 0) for t in texts]


def expert_one_is_always_wrong(prompts, completions, expert, **kwargs):
    """``length_reward`` under expert 0, 0 under expert 1: expert-1 groups are constant, so DAPO refills."""
    return [0.0 if e == 1 else r for e, r in zip(expert, length_reward(prompts, completions))]


def _digest(value) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- (a) DAPO's loss equals GRPO's


def _loss_task(rank: int, out: Path, model: str, world: str) -> dict:
    import torch

    from baselines.dapo import DAPOTrainer
    from baselines.rl import build_trainer
    from meml.training.rl_config import RLConfig

    settings = dict(steps=1, prompts_per_step=4, num_generations=G, max_completion_length=8)
    rows = _rows(world)
    trainers = {}
    for name, dynamic in (("DAPO", True), ("GRPO", False)):  # GRPO with DAPO's loss ("dapo"), clip and masking
        run = RLConfig(algorithm="DAPO", dynamic_sampling=dynamic, **settings)
        trainers[name] = build_trainer(model, rows, "gsm8k", run, out / name, compute=_compute(),
                                       reward_funcs=[position_reward])
    assert isinstance(trainers["DAPO"], DAPOTrainer) and not isinstance(trainers["GRPO"], DAPOTrainer)
    assert trainers["GRPO"].loss_type == "dapo" and trainers["DAPO"].accelerator.num_processes == WORLD
    tokenizer = trainers["DAPO"].processing_class
    eos = tokenizer.convert_tokens_to_ids(tokenizer.eos_token)

    def scripted_generation(prompt_ids, *args, **kwargs):
        # lengths differ by row and by process, so the processes hold different numbers of loss tokens
        return [[11 + (i % 5)] * (1 + (i + 3 * rank) % 6) + [eos] for i in range(len(prompt_ids))], None

    # two groups per process: questions 2r and 2r + 1 under expert 0
    inputs = [dict(rows[2 * q]) for q in (2 * rank, 2 * rank + 1) for _ in range(G)]
    result = {}
    for name, trainer in trainers.items():
        trainer._generate_single_turn = scripted_generation
        trainer.model.train()
        trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train(); the step is called directly
        batch = trainer._generate_and_score_completions([dict(r) for r in inputs])
        loss = trainer.compute_loss(trainer.model, batch)
        result[name] = {"loss": loss.item(), "num_items_in_batch": batch["num_items_in_batch"].item(),
                        "local_tokens": batch["completion_mask"].sum().item(),
                        "completion_ids": batch["completion_ids"].tolist(), "advantages": batch["advantages"].tolist()}
    result["kept_groups"] = trainers["DAPO"]._metrics["train"]["dynamic/kept_groups"]
    result["rank_rows"] = len(inputs)
    assert torch.isfinite(torch.tensor(result["DAPO"]["loss"]))
    return result


@pytest.mark.slow
def test_dapo_loss_equals_grpo_dapo_loss_on_two_processes(tiny_model_dir, small_world, tmp_path):
    """Nothing filtered: DAPO's rollout batch and loss are TRL's own, its token normaliser summed over processes."""
    ranks = _spawn("loss", tmp_path, model=str(tiny_model_dir), world=str(small_world))
    total_tokens = sum(r["GRPO"]["local_tokens"] for r in ranks)
    assert ranks[0]["GRPO"]["local_tokens"] != ranks[1]["GRPO"]["local_tokens"]  # the processes differ
    for rank in ranks:
        dapo, grpo = rank["DAPO"], rank["GRPO"]
        assert rank["kept_groups"] == [2.0]  # both groups of this process kept: nothing filtered
        assert dapo["completion_ids"] == grpo["completion_ids"] and dapo["advantages"] == grpo["advantages"]
        assert grpo["num_items_in_batch"] == total_tokens  # TRL: gathered over the processes
        assert dapo["num_items_in_batch"] == total_tokens
        assert dapo["loss"] == pytest.approx(grpo["loss"], rel=1e-6, abs=1e-8)


# --------------------------------------------------------------------------- (b) per-process state across a resume


def _state_task(rank: int, out: Path, model: str, world: str, kind: str) -> dict:
    import shutil

    import torch.distributed as dist
    import transformers

    from meml.training.rl_config import RLConfig

    rows = _rows(world)

    def build(trainer_dir):
        if kind == "DAPO":
            from baselines.rl import build_trainer

            run = RLConfig(algorithm="DAPO", steps=2, prompts_per_step=2, num_generations=G, max_completion_length=8,
                           save_steps=1, learning_rate=1e-2)
            return build_trainer(model, rows, "gsm8k", run, trainer_dir, compute=_compute(),
                                 reward_funcs=[expert_one_is_always_wrong])
        from meml.data import load_records
        from meml.method.config import MEMLConfig
        from meml.method.trainer import meml_rows, trainer_builder

        run = RLConfig(algorithm="GRPO", steps=2, prompts_per_step=2, num_generations=G, max_completion_length=8,
                       save_steps=1, learning_rate=1e-2)
        meml = MEMLConfig(buffer_k=2, buffer_rule="ge", buffer_capacity=50)  # fills, never drains in two steps
        questions = meml_rows(load_records("synth_gsm8k", "train", Path(world))[:8])
        return trainer_builder(meml, EXPERTS)(model, questions, "gsm8k", run, trainer_dir, compute=_compute(),
                                              reward_funcs=[expert_one_is_always_wrong])  # expert 1 offers each step

    class Record(transformers.TrainerCallback):
        """This process's extra state when each checkpoint is written, and when training (re)starts."""

        def __init__(self):
            self.saved, self.began = {}, None

        def on_save(self, args, state, control, **kwargs):
            self.saved[state.global_step] = trainer.extra_state()

        def on_train_begin(self, args, state, control, **kwargs):
            self.began = trainer.extra_state()

    trainer = build(out / "straight")
    straight = Record()
    trainer.add_callback(straight)
    initial = trainer.extra_state()
    trainer.train()
    final_straight = trainer.extra_state()
    checkpoint = out / "straight" / "checkpoint-1"
    files = sorted(p.name for p in checkpoint.iterdir())
    on_disk = json.loads(trainer.extra_state_path(checkpoint).read_text())
    dist.barrier()

    trainer = build(out / "resumed")
    resumed = Record()
    trainer.add_callback(resumed)
    trainer.train(resume_from_checkpoint=str(checkpoint))
    final_resumed = trainer.extra_state()
    dist.barrier()
    if rank == 0:
        shutil.rmtree(out / "straight", ignore_errors=True)
        shutil.rmtree(out / "resumed", ignore_errors=True)
    return {"initial": _digest(initial), "saved_at_1": _digest(straight.saved[1]), "on_disk": _digest(on_disk),
            "restored": _digest(resumed.began), "final_straight": _digest(final_straight),
            "final_resumed": _digest(final_resumed), "files": files, "process_index": trainer.args.process_index}


@pytest.mark.slow
@pytest.mark.parametrize("kind, stem", [("DAPO", "dynamic_sampling_rng"), ("MEML", "hard_example_buffer")])
def test_each_process_resumes_its_own_state(kind, stem, tiny_model_dir, small_world, tmp_path):
    """Every process writes its own state file into the checkpoint and reads back its own on resume: the
    resumed run ends in the state the uninterrupted run ended in, process by process."""
    ranks = _spawn("state", tmp_path, model=str(tiny_model_dir), world=str(small_world), kind=kind)
    for index, rank in enumerate(ranks):
        assert rank["process_index"] == index
        assert {f"{stem}_0.json", f"{stem}_1.json"} <= set(rank["files"])  # one file per process
        assert rank["on_disk"] == rank["saved_at_1"]  # the file holds this process's state, not another's
        assert rank["restored"] == rank["saved_at_1"]  # read back by the same process before the first step
        assert rank["final_resumed"] == rank["final_straight"]
        assert rank["saved_at_1"] != rank["initial"]  # step 1 changed the state (refill draws, buffer offers)
    assert ranks[0]["saved_at_1"] != ranks[1]["saved_at_1"]  # the processes' states differ
    if kind == "DAPO":
        assert ranks[0]["initial"] != ranks[1]["initial"]  # refill streams are seeded per process


def test_one_process_keeps_its_stream_and_reads_checkpoints_of_either_layout(tiny_model_dir, small_world, tmp_path):
    """With one process the refill RNG is ``random.Random(seed)`` as before, its state goes to
    ``dynamic_sampling_rng_0.json`` through TRL's hooks, and a checkpoint written before per-process files
    (``dynamic_sampling_rng.json``) still resumes."""
    import random

    from baselines.rl import build_trainer
    from meml.training.grpo import process_seed
    from meml.training.rl_config import RLConfig

    run = RLConfig(algorithm="DAPO", steps=1, prompts_per_step=2, num_generations=G, max_completion_length=8, seed=7)

    def build(name):
        trainer = build_trainer(tiny_model_dir, _rows(small_world), "gsm8k", run, tmp_path / name,
                                reward_funcs=[position_reward])
        trainer.create_optimizer_and_scheduler(num_training_steps=1)  # done by Trainer.train() otherwise
        return trainer

    assert process_seed(7, 0, 1) == 7 and len({process_seed(7, r, 2) for r in range(2)}) == 2
    trainer = build("a")
    assert trainer._refill_rng.getstate() == random.Random(7).getstate()
    trainer._refill_rng.random()
    expected = trainer._refill_rng.getstate()
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()  # made by the model's save in Trainer._save_checkpoint otherwise
    trainer._save_optimizer_and_scheduler(str(checkpoint))
    assert (checkpoint / "dynamic_sampling_rng_0.json").exists() and (checkpoint / "optimizer.pt").exists()
    fresh = build("b")
    fresh._load_optimizer_and_scheduler(str(checkpoint))
    assert fresh._refill_rng.getstate() == expected
    (checkpoint / "dynamic_sampling_rng_0.json").rename(checkpoint / "dynamic_sampling_rng.json")
    old = build("c")
    old._load_optimizer_and_scheduler(str(checkpoint))
    assert old._refill_rng.getstate() == expected


TASKS = {"loss": _loss_task, "state": _state_task}
