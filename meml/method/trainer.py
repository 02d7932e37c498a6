"""MEMLGRPOTrainer: MEML-GRPO's RIEL stage as a subclass of TRL's GRPOTrainer.

Every question of a batch is sampled G times under each of the N expert prompts; TRL's scoring
then sees N x G rows per question, in groups of G per (question, expert). On top of TRL's loss
(sequence mean per answer, mean over all rows: the mean over experts of the per-expert losses):

- intra-expert advantages (Eq. 4) with the non-negative truncation of Eq. 5;
- inter-expert mutual learning (Eqs. 7-9): ``lambda1`` times the token-mean NLL of the best
  expert's correct answer(s) under the worst expert's prompt (optionally plus the stop-gradient
  teacher term log p(O+ | Q, P+), read from the log-probs the policy loss already computed);
- the hard-example buffer (Eq. 10): an expert with more than K of its G answers wrong offers
  (question, its prompt, a reference answer); when the buffer is full, ``lambda2`` times the
  token-mean NLL of its items is added to that step's loss (one SFT update sharing the RL step)
  and the buffer is emptied.

The buffer is per process (each process offers its own groups); its items, RNG and SFT-update count are
checkpointed per process (``hard_example_buffer_<process index>.json``) and restored by the same process
on resume.

Settings: :class:`meml.method.config.MEMLConfig`; choices and reasons: docs/method.md.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import TrainerCallback

from meml.method.config import MEMLConfig
from meml.method.losses import (
    HardExampleBuffer,
    best_and_worst_experts,
    intra_expert_advantages,
    token_mean_nll,
)
from meml.prompts import prompt_messages
from meml.records import Record
from meml.training.grpo import SparsityGRPOTrainer, process_seed
from meml.training.rl import trainer_kwargs
from meml.training.trl_compat import pad

BUFFER_STATE = "hard_example_buffer"  # file stem: <stem>_<process index>.json in every checkpoint
BUFFER_OPTIMIZER = "buffer_optimizer.pt"  # the 'separate' buffer step's AdamW state (one process)


def meml_rows(records: Sequence[Record]) -> list[dict]:
    """One TRL row per question; the trainer builds each expert's prompt from ``question``."""
    return [{"prompt": prompt_messages(r.question, None), "question": r.question, "answer": r.answer,
             "reference": r.rationale or "", "options": r.options or "", "slice": r.slice or "", "id": r.id}
            for r in records]


class MEMLGRPOTrainer(SparsityGRPOTrainer):
    """GRPO with N expert prompts per question and intra-expert advantages.

    Args (beyond ``GRPOTrainer``'s):
        meml: the run's :class:`meml.method.config.MEMLConfig`, the method's switches included.
        expert_prompts: every configured expert prompt; the settings' experts (``meml.experts``) are
            used, and each question of a batch is sampled under each of them.
    """

    extra_state_name = BUFFER_STATE

    def __init__(self, *args, meml: MEMLConfig, expert_prompts: Sequence[str], **kwargs):
        super().__init__(*args, **kwargs)
        if self.args.steps_per_generation != 1 or self.num_iterations != 1:
            raise ValueError("MEML-GRPO needs steps_per_generation == 1 and num_iterations == 1")
        self.meml = meml
        self.expert_ids = meml.experts(len(expert_prompts))
        self.expert_prompts = [expert_prompts[e] for e in self.expert_ids]
        self.lambda1 = meml.lambda1_used
        self.buffer = None
        if meml.hsft:
            self.buffer = HardExampleBuffer(capacity=meml.buffer_capacity, k=meml.buffer_k, rule=meml.buffer_rule,
                                            probability=meml.buffer_probability,
                                            seed=process_seed(self.args.seed, self.accelerator.process_index,
                                                              self.accelerator.num_processes))
        self.sft_updates = 0
        self.tie_rng = None  # E+/E- among tied experts: lowest index unless meml.tie_break is "random"
        if meml.tie_break == "random":
            seed = process_seed(self.args.seed, self.accelerator.process_index, self.accelerator.num_processes)
            self.tie_rng = random.Random(f"ties-{seed}")
        self._transfer: dict | None = None  # mutual-learning batch of the current step
        self._buffer_batch: dict | None = None  # buffer contents to fit in the current step
        self._separate_batch: dict | None = None  # ... or right after it (meml.buffer_update "separate")
        self.buffer_optimizer = None  # the separate buffer step's AdamW, made at its first use
        if meml.hsft and meml.buffer_update == "separate":
            if self.accelerator.num_processes > 1:
                raise ValueError("meml.buffer_update 'separate' runs on one process; use 'joint' with several")
            if meml.buffer_learning_rate is None:
                raise ValueError("meml.buffer_update 'separate' needs meml.buffer_learning_rate (the workflow sets it "
                                 "from sft.learning_rate)")
            self.add_callback(_SeparateBufferStep(self))

    def extra_state(self) -> dict | None:
        """This process's buffer items, RNG and SFT-update count, and its tie-break RNG (checkpointed per process;
        None with neither a buffer nor random tie-breaks)."""
        state = {}
        if self.buffer is not None:
            state.update(self.buffer.state(), sft_updates=self.sft_updates)
        if self.tie_rng is not None:
            version, internal, gauss = self.tie_rng.getstate()
            state["tie_rng"] = [version, list(internal), gauss]
        return state or None

    def load_extra_state(self, state: dict) -> None:
        if self.buffer is not None:
            self.buffer.load_state(state)
            self.sft_updates = state["sft_updates"]
        if self.tie_rng is not None and "tie_rng" in state:
            version, internal, gauss = state["tie_rng"]
            self.tie_rng.setstate((version, tuple(internal), gauss))

    def expand_to_experts(self, inputs: list[dict]) -> list[dict]:
        """Rows of G copies per question -> rows of G copies per (question, expert), question-major."""
        size = self.num_generations
        if len(inputs) % size:
            raise ValueError(f"{len(inputs)} rows do not split into groups of {size}")
        rows = []
        for start in range(0, len(inputs), size):
            row = inputs[start]
            if "question" not in row:
                raise ValueError("MEML-GRPO rows need a 'question' column (see meml.method.trainer.meml_rows)")
            for expert, system in zip(self.expert_ids, self.expert_prompts):
                expanded = {**row, "prompt": prompt_messages(row["question"], system), "expert": expert}
                rows.extend(dict(expanded) for _ in range(size))
        return rows

    def _generate_and_score_completions(self, inputs):
        if not self.model.training:
            return super()._generate_and_score_completions(inputs)
        expanded = self.expand_to_experts(inputs)
        output, rows, rewards_per_func = self._score_round(expanded)
        self._log_sparsity(rows, rewards_per_func)
        rewards = (rewards_per_func * self.reward_weights.to(rewards_per_func.device)).nansum(dim=1)
        start = self.accelerator.process_index * len(expanded)
        local = rewards[start:start + len(expanded)]
        shape = (-1, len(self.expert_prompts), self.num_generations)
        advantages = intra_expert_advantages(local.view(shape), self.meml.scale_by_std, self.meml.positive_only)
        answered = (rewards_per_func[start:start + len(expanded), 0].view(shape) >= 1.0).any(dim=2)  # (Q, N)
        # questions no expert answered: no signal from any group, nothing to transfer (the paper's sparsity)
        self._metrics["train"]["sparsity/frac_questions_all_zero"].append((~answered.any(dim=1)).float().mean().item())
        output["advantages"] = advantages.flatten().to(output["advantages"].device)
        # the row order survives TRL's shuffle, so the loss can find O+ among the rollouts (teacher term)
        output["meml_row"] = torch.arange(len(expanded), device=output["advantages"].device)
        self._transfer = self.transfer_batch(expanded, output, local.view(shape)) if self.lambda1 > 0 else None
        self._buffer_batch = (self.fill_buffer(expanded, local.view(shape), output) if self.buffer is not None
                              else None)
        return output

    def fill_buffer(self, rows: list[dict], rewards: torch.Tensor, output: dict | None = None) -> dict | None:
        """Offer every (question, expert) group to the buffer; when it is full, its items as a batch."""
        n_experts, size = rewards.shape[1], rewards.shape[2]
        for q in range(rewards.shape[0]):
            for e in range(n_experts):
                first = (q * n_experts + e) * size
                n_wrong = int((rewards[q, e] < 1.0).sum().item())
                if not self.buffer.qualifies(n_wrong):
                    continue
                reference = rows[first]["reference"]
                if self.meml.buffer_reference == "own_rollout":
                    correct = [i for i in range(size) if rewards[q, e, i] >= 1.0]
                    if not correct:
                        continue
                    row = first + correct[0]
                    ids = output["completion_ids"][row][output["completion_mask"][row].bool()]
                    reference = self._tokenizer.decode(ids, skip_special_tokens=True)
                self.buffer.offer({"question": rows[first]["question"], "expert": e, "reference": reference},
                                  n_wrong, size)
        metrics = self._metrics["train"]
        metrics["buffer/size"].append(float(len(self.buffer.items)))
        if not self.buffer.full:
            metrics["buffer/sft_updates"].append(float(self.sft_updates))
            return None
        items = self.buffer.drain()
        self.sft_updates += 1
        metrics["buffer/sft_updates"].append(float(self.sft_updates))
        return self.sft_batch(items)

    def sft_batch(self, items: list[dict]) -> dict:
        """Tensors of (question under the item's expert prompt, reference answer + end of turn)."""
        prompts = [prompt_messages(i["question"], self.expert_prompts[i["expert"]]) for i in items]
        prompt_ids, _, _ = self._tokenize_prompts(prompts)
        eos = self._tokenizer.eos_token_id
        answers = [self._tokenizer(i["reference"], add_special_tokens=False)["input_ids"] + [eos] for i in items]
        device = self.accelerator.device
        prompt_tensors = [torch.tensor(ids) for ids in prompt_ids]
        answer_tensors = [torch.tensor(ids) for ids in answers]
        pad_id = self._tokenizer.pad_token_id
        return {
            "prompt_ids": pad(prompt_tensors, padding_value=pad_id, padding_side="left").to(device),
            "prompt_mask": pad([torch.ones_like(t) for t in prompt_tensors], padding_value=0,
                               padding_side="left").to(device),
            "completion_ids": pad(answer_tensors, padding_value=pad_id, padding_side="right").to(device),
            "completion_mask": pad([torch.ones_like(t) for t in answer_tensors], padding_value=0,
                                   padding_side="right").to(device),
        }

    def transfer_batch(self, rows: list[dict], output: dict, rewards: torch.Tensor) -> dict | None:
        """Per question with a valid (E+, E-): E+'s first correct completion under E-'s prompt, as tensors."""
        best, worst, valid = best_and_worst_experts(rewards.cpu(), rng=self.tie_rng)
        n_experts, size = rewards.shape[1], rewards.shape[2]
        prompts, completion_rows = [], []
        questions = torch.nonzero(valid).flatten().tolist()
        for q in questions:
            first = q * n_experts * size + best[q].item() * size
            correct = [i for i in range(size) if rewards[q, best[q], i] >= 1.0]
            for i in correct[:1] if self.meml.transfer == "first" else correct:
                prompts.append(prompt_messages(rows[first]["question"], self.expert_prompts[worst[q].item()]))
                completion_rows.append(first + i)
        self._metrics["train"]["mutual/questions"].append(float(len(questions)))
        if not prompts:
            return None
        prompt_ids, _, _ = self._tokenize_prompts(prompts)
        device = output["completion_ids"].device
        prompt_tensors = [torch.tensor(ids) for ids in prompt_ids]
        index = torch.tensor(completion_rows, device=device)
        return {
            "prompt_ids": pad(prompt_tensors, padding_value=self._tokenizer.pad_token_id, padding_side="left").to(device),
            "prompt_mask": pad([torch.ones_like(t) for t in prompt_tensors], padding_value=0,
                               padding_side="left").to(device),
            "completion_ids": output["completion_ids"][index],
            "completion_mask": output["completion_mask"][index],
            "rows": index,  # O+'s position among the rollouts (for the teacher term)
        }

    def mutual_learning_loss(self, model, transfer: dict) -> torch.Tensor:
        """Token-mean NLL of ``transfer``'s completions given its prompts (mutual learning, buffer SFT)."""
        input_ids = torch.cat([transfer["prompt_ids"], transfer["completion_ids"]], dim=1)
        attention_mask = torch.cat([transfer["prompt_mask"], transfer["completion_mask"]], dim=1)
        logps, _, _ = self._get_per_token_logps_and_entropies(model, input_ids, attention_mask,
                                                              transfer["completion_ids"].size(1))
        return token_mean_nll(logps, transfer["completion_mask"])

    def _get_per_token_logps_and_entropies(self, *args, **kwargs):
        logps, entropies, *rest = super()._get_per_token_logps_and_entropies(*args, **kwargs)
        if getattr(self, "_capture_logps", False):
            self._captured_logps = logps.detach()
            self._capture_logps = False
        return (logps, entropies, *rest)

    def teacher_value(self, inputs: dict, transfer: dict) -> torch.Tensor:
        """log p(O+ | Q, P+), token mean, from the policy loss's own log-probs (no extra forward pass)."""
        position = torch.empty_like(inputs["meml_row"])
        position[inputs["meml_row"]] = torch.arange(len(position), device=position.device)
        rows = position[transfer["rows"]]
        return -token_mean_nll(self._captured_logps[rows], inputs["completion_mask"][rows])

    def _anywhere(self, *flags: bool) -> list[bool]:
        """Each flag OR-ed over the processes (the flags themselves with one process): one gather for all."""
        if self.accelerator.num_processes == 1:
            return list(flags)
        gathered = self.accelerator.gather(torch.tensor([[float(f) for f in flags]], device=self.accelerator.device))
        return [bool(v) for v in gathered.max(dim=0).values.tolist()]

    def idle_pass(self, model, inputs: dict) -> torch.Tensor:
        """A zero-weighted forward pass on one of this step's rollouts.

        Under several processes every process must run the same forward passes, in the same order, before
        the backward (DDP synchronises in each forward and reduces gradients once), so a process without a
        mutual-learning pair or a full buffer runs this in their place; it adds nothing to the loss or the
        gradient.
        """
        batch = {k: inputs[k][:1] for k in ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask")}
        return 0.0 * self.mutual_learning_loss(model, batch)

    def _compute_loss(self, model, inputs):
        use_teacher = self.model.training and self.meml.teacher_term and self._transfer is not None and "meml_row" in inputs
        self._capture_logps = use_teacher
        loss = super()._compute_loss(model, inputs)
        if not self.model.training:
            return loss
        has_mutual = self.lambda1 > 0 and self._transfer is not None
        has_buffer_batch = self._buffer_batch is not None
        # decided before any extra forward pass, so that every process runs the same passes in the same order
        any_mutual, any_buffer_batch = self._anywhere(has_mutual, has_buffer_batch)
        if self.lambda1 > 0:
            if has_mutual:
                mutual = self.mutual_learning_loss(model, self._transfer)
                if use_teacher:
                    mutual = mutual + self.teacher_value(inputs, self._transfer)
                self._metrics["train"]["mutual/loss"].append(mutual.item())
                loss = loss + self.lambda1 * mutual
            else:
                self._metrics["train"]["mutual/loss"].append(0.0)
                if any_mutual:
                    loss = loss + self.idle_pass(model, inputs)
        if has_buffer_batch and self.meml.buffer_update == "separate":
            self._separate_batch, self._buffer_batch = self._buffer_batch, None  # fitted after the RL update
        elif has_buffer_batch:
            sft = self.mutual_learning_loss(model, self._buffer_batch)
            self._metrics["train"]["buffer/sft_loss"].append(sft.item())
            loss = loss + self.meml.lambda2 * sft
            self._buffer_batch = None
        elif any_buffer_batch:
            loss = loss + self.idle_pass(model, inputs)
        return loss


    def separate_buffer_step(self) -> None:
        """The 'separate' buffer update: one AdamW step on lambda2 x the buffer's token-mean NLL, at
        ``meml.buffer_learning_rate``, after the RL optimizer step of the step in which the buffer filled."""
        if self._separate_batch is None:
            return
        batch, self._separate_batch = self._separate_batch, None
        model = self.model
        if self.buffer_optimizer is None:
            self.buffer_optimizer = torch.optim.AdamW(model.parameters(), lr=self.meml.buffer_learning_rate,
                                                      weight_decay=0.0)
        model.zero_grad(set_to_none=True)  # the RL gradients are already applied
        sft = self.mutual_learning_loss(model, batch)
        (self.meml.lambda2 * sft).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), self.args.max_grad_norm)
        self.buffer_optimizer.step()
        model.zero_grad(set_to_none=True)
        self._metrics["train"]["buffer/sft_loss"].append(sft.item())

    def _save_optimizer_and_scheduler(self, output_dir):
        super()._save_optimizer_and_scheduler(output_dir)
        if self.buffer_optimizer is not None:
            torch.save(self.buffer_optimizer.state_dict(), Path(output_dir) / BUFFER_OPTIMIZER)

    def _load_optimizer_and_scheduler(self, checkpoint):
        super()._load_optimizer_and_scheduler(checkpoint)
        saved = Path(checkpoint) / BUFFER_OPTIMIZER if checkpoint is not None else None
        if saved is not None and saved.exists() and self.meml.buffer_update == "separate":
            self.buffer_optimizer = torch.optim.AdamW(self.model.parameters(), lr=self.meml.buffer_learning_rate,
                                                      weight_decay=0.0)
            self.buffer_optimizer.load_state_dict(torch.load(saved, weights_only=True))


class _SeparateBufferStep(TrainerCallback):
    """Runs :meth:`MEMLGRPOTrainer.separate_buffer_step` after every optimizer step (transformers'
    ``on_optimizer_step``: after ``optimizer.step()``, before the gradients are cleared)."""

    def __init__(self, trainer: MEMLGRPOTrainer):
        self.trainer = trainer

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.trainer.separate_buffer_step()


def trainer_builder(meml: MEMLConfig, expert_prompts: Sequence[str]):
    """A ``build`` function for :func:`meml.training.rl.train_rl` that makes a MEML-GRPO trainer of ``meml``
    (switches included) over the configured ``expert_prompts``."""
    meml.experts(len(expert_prompts))  # fail before any model is loaded

    def build(model_path, rows, task, run, trainer_dir, callbacks=(), compute=None, reward_funcs=None):
        return MEMLGRPOTrainer(**trainer_kwargs(model_path, rows, task, run, trainer_dir, callbacks, compute,
                                                reward_funcs), meml=meml, expert_prompts=expert_prompts)

    return build
