"""The private TRL, transformers and lm-eval members this project relies on, declared in one place.

TRL's ``GRPOTrainer`` has no public hooks for what the RL trainers here need (the per-function rewards
of a round, the rollout batch before the loss, the loss itself, extra checkpoint state), so the
trainers override or call some of its private methods. Every such member is one row of
:data:`PRIVATE_SURFACE`: who owns it, its name, the parameter names the project relies on, and whether
TRL itself must still call it (an override that TRL no longer calls would be silently skipped).
:func:`check_trl_surface` compares the table with the installed TRL and transformers and raises one
:class:`TRLSurfaceError` that names every missing or changed member and the installed versions;
every trainer runs it once when it is built. Private functions (``trl.trainer.utils.pad``) are
imported from here, never from TRL directly.

When TRL is upgraded: run ``pytest tests/test_trl_compat.py``; for each member it names, read the new
TRL code, adapt the override or call, then update the row (and :data:`TESTED_WITH`).
"""

from __future__ import annotations

import importlib
import inspect
import re
from dataclasses import dataclass
from functools import lru_cache

TESTED_WITH = {"trl": "1.16.0", "transformers": "5.24.0", "lm_eval": "0.4.13"}  # the versions the table was checked against


@dataclass(frozen=True)
class PrivateMember:
    """One private member of TRL or transformers the project overrides, calls or reads.

    Args:
        owner: dotted path of the class (``trl.GRPOTrainer``: resolved along its MRO, which is what the
            project's ``super()`` calls reach) or module that provides it.
        name: the member's name.
        params: its parameter names after ``self`` in order; ``None`` for an attribute that the owner
            assigns (``self.<name> = ...`` in its source).
        prefix: the installed signature must only start with ``params`` (the project passes these
            and forwards the rest); otherwise it must equal them (an override spells them out).
        called_in: a module whose source must still call ``self.<name>(`` (the project overrides
            the member as a hook and relies on TRL or transformers calling it).
        use: where and how the project uses it.
    """

    owner: str
    name: str
    params: tuple[str, ...] | None = None
    prefix: bool = False
    called_in: str | None = None
    use: str = ""

    @property
    def qualname(self) -> str:
        return f"{self.owner}.{self.name}"


GRPO = "trl.GRPOTrainer"
GRPO_MODULE = "trl.trainer.grpo_trainer"
TRAINER_MODULE = "transformers.trainer"

PRIVATE_SURFACE: tuple[PrivateMember, ...] = (
    PrivateMember(GRPO, "_calculate_rewards", ("inputs", "prompts", "completions", "completion_ids_list"),
                  called_in=GRPO_MODULE,
                  use="overridden by SparsityGRPOTrainer (meml/training/grpo.py) to keep each round's rows and "
                      "per-function rewards (a (rows, functions) tensor, gathered across processes)"),
    PrivateMember(GRPO, "_generate_and_score_completions", ("inputs",), called_in=GRPO_MODULE,
                  use="overridden and called through super() by SparsityGRPOTrainer, DAPOTrainer "
                      "(baselines/dapo.py) and MEMLGRPOTrainer (meml/method/trainer.py); returns the rollout "
                      "batch dict (prompt_ids, completion_ids, completion_mask, advantages, num_items_in_batch, ...)"),
    PrivateMember(GRPO, "_compute_loss", ("model", "inputs"), called_in=GRPO_MODULE,
                  use="overridden by MEMLGRPOTrainer (adds the mutual-learning and buffer terms)"),
    PrivateMember(GRPO, "_get_per_token_logps_and_entropies",
                  ("model", "input_ids", "attention_mask", "logits_to_keep", "batch_size", "compute_entropy",
                   "compute_aux_loss"), prefix=True, called_in=GRPO_MODULE,
                  use="overridden by SparsityGRPOTrainer (prompt-shared log-probs of the tiny models; the remaining "
                      "multimodal keyword arguments are forwarded) and by MEMLGRPOTrainer (*args, **kwargs) to "
                      "capture the policy loss's log-probs; called by MEMLGRPOTrainer.mutual_learning_loss; returns "
                      "(logps, entropies, aux_loss)"),
    PrivateMember(GRPO, "_tokenize_prompts", ("prompts",),
                  use="called by MEMLGRPOTrainer (sft_batch, transfer_batch) and the tiny decoder's rollout_func; returns (prompt_ids, images, "
                      "multimodal_fields)"),
    PrivateMember(GRPO, "_generate_single_turn", ("prompt_ids", "images", "multimodal_fields", "num_generations"),
                  prefix=True, called_in=GRPO_MODULE,
                  use="not used by the trainers: wrapped by bench/gpu_smoke.py (GenerationTimer) and replaced by the "
                      "tests' scripted rollouts; returns (completion_ids, logprobs)"),
    PrivateMember(GRPO, "rollout_func",
                  use="GRPOTrainer's documented but experimental rollout_func argument, kept as self.rollout_func and "
                      "called by _generate: meml.training.fast_paths.rollout_function passes the tiny decoder"),
    PrivateMember(GRPO, "eos_token_ids",
                  use="read by meml.training.fast_paths' rollout: every EOS id that ends a completion"),
    PrivateMember(GRPO, "_metrics",
                  use="read by every trainer here: {'train'|'eval': defaultdict(list)} of logged metrics"),
    PrivateMember(GRPO, "_tokenizer",
                  use="read by DAPOTrainer and MEMLGRPOTrainer (pad/eos ids, decode, tokenize references)"),
    PrivateMember(GRPO, "_save_optimizer_and_scheduler", ("output_dir",), called_in=TRAINER_MODULE,
                  use="transformers.Trainer checkpoint hook, called by every process from _save_checkpoint; "
                      "overridden by SparsityGRPOTrainer to write each process's extra state, and by MEMLGRPOTrainer "
                      "for the separate buffer step's optimizer"),
    PrivateMember(GRPO, "_load_optimizer_and_scheduler", ("checkpoint",), called_in=TRAINER_MODULE,
                  use="transformers.Trainer resume hook (TRL overrides it for its own entropy state), called by "
                      "every process of train(resume_from_checkpoint=...); overridden by SparsityGRPOTrainer to "
                      "read each process's extra state"),
    PrivateMember("lm_eval.models.huggingface.HFLM", "_model_generate", ("context", "max_length", "stop"),
                  prefix=True, called_in="lm_eval.models.huggingface",
                  use="overridden by meml.evaluation.decoder_lm_class (generation through the tiny decoder); returns "
                      "the context followed by the generated ids"),
    PrivateMember("lm_eval.evaluator", "add_env_info", ("storage",),
                  use="replaced for the duration of a simple_evaluate call by "
                      "meml.evaluation.without_environment_report"),
    PrivateMember("trl.trainer.utils", "pad", ("tensors", "padding_value", "padding_side"), prefix=True,
                  use="called by MEMLGRPOTrainer through meml.training.trl_compat.pad"),
)


class TRLSurfaceError(RuntimeError):
    """The installed TRL/transformers lack or changed private members this project uses."""


def installed_versions() -> dict[str, str]:
    versions = {}
    for package in TESTED_WITH:
        try:
            versions[package] = importlib.import_module(package).__version__
        except Exception:  # noqa: BLE001 - a broken install is reported, not raised
            versions[package] = "not importable"
    return versions


def _resolve(path: str):
    """The module or attribute at dotted ``path`` (``trl.GRPOTrainer``, ``trl.trainer.utils``)."""
    try:
        return importlib.import_module(path)
    except ImportError:
        if "." not in path:
            raise
    module, _, attribute = path.rpartition(".")
    return getattr(_resolve(module), attribute)


@lru_cache(maxsize=None)
def _source(obj) -> str:
    return inspect.getsource(obj)


def _parameters(function, method: bool) -> tuple[inspect.Parameter, ...] | None:
    """The parameters after the instance (of a method), or None for a pass-through wrapper that forwards
    ``*args, **kwargs`` (a timer or a test double installed on the class: nothing to compare)."""
    parameters = tuple(inspect.signature(function).parameters.values())  # follows functools.wraps
    if method:
        parameters = parameters[1:]
    if parameters and all(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters):
        return None
    return parameters


def member_problem(member: PrivateMember) -> str | None:
    """What is wrong with ``member`` in the installed TRL/transformers (None: as declared)."""
    try:
        owner = _resolve(member.owner)
    except Exception as err:  # noqa: BLE001
        return f"{member.qualname}: owner {member.owner} not found ({type(err).__name__}: {err})"
    if member.params is None:  # an attribute the owner assigns in its code
        if hasattr(owner, member.name):
            return None
        try:
            sources = [_source(c) for c in inspect.getmro(owner) if c.__module__.split(".")[0] in ("trl", "transformers")]
        except (TypeError, OSError) as err:
            return f"{member.qualname}: cannot read the source of {member.owner} ({err})"
        assigned = re.compile(rf"self\.{re.escape(member.name)}\s*(?::[^=\n]+)?=[^=]")
        if not any(assigned.search(s) for s in sources):
            return f"{member.qualname}: missing (no longer assigned as self.{member.name} by {member.owner})"
        return None
    function = getattr(owner, member.name, None)
    if function is None:
        return f"{member.qualname}: missing"
    if not callable(function):
        return f"{member.qualname}: not callable any more ({type(function).__name__})"
    try:
        parameters = _parameters(function, method=inspect.isclass(owner))
    except (TypeError, ValueError) as err:
        return f"{member.qualname}: signature unreadable ({err})"
    expected = member.params
    found = expected if parameters is None else tuple(p.name for p in parameters)
    if (found[:len(expected)] if member.prefix else found) != expected:
        kind = "must start with" if member.prefix else "expected"
        return f"{member.qualname}: parameters changed: {kind} ({', '.join(expected)}), found ({', '.join(found)})"
    if member.called_in is not None:
        try:
            text = _source(_resolve(member.called_in))
        except Exception as err:  # noqa: BLE001
            return f"{member.qualname}: cannot read {member.called_in} to see that it still calls it ({err})"
        if not re.search(rf"self\.{re.escape(member.name)}\(", text):
            return f"{member.qualname}: no longer called by {member.called_in} (the override here would never run)"
    return None


def surface_problems(members=PRIVATE_SURFACE) -> list[str]:
    """One line per declared member that is missing or changed in the installed TRL/transformers."""
    return [problem for problem in map(member_problem, members) if problem is not None]


def check_trl_surface(members=PRIVATE_SURFACE) -> None:
    """Raise one :class:`TRLSurfaceError` naming every missing or changed private member (nothing when all match)."""
    problems = surface_problems(members)
    if not problems:
        return
    versions = installed_versions()
    tested = ", ".join(f"{k} {v}" for k, v in TESTED_WITH.items())
    raise TRLSurfaceError(
        f"the installed trl {versions['trl']} (transformers {versions['transformers']}) does not provide the private "
        f"members this project relies on, as declared in meml/training/trl_compat.py (checked against {tested}):\n"
        + "\n".join(f"  - {p}" for p in problems)
        + "\nInstall the tested versions (pyproject.toml pins them) or adapt the code that uses these members and "
          "their rows in PRIVATE_SURFACE.")


@lru_cache(maxsize=1)
def ensure_trl_surface() -> None:
    """:func:`check_trl_surface` once per process (every RL trainer here calls it when it is built)."""
    check_trl_surface()


def _private(owner: str, name: str):
    """A declared private function of TRL, or the one clear error when it is gone."""
    if not any(m.owner == owner and m.name == name for m in PRIVATE_SURFACE):
        raise KeyError(f"{owner}.{name} is not declared in meml.training.trl_compat.PRIVATE_SURFACE")
    try:
        return getattr(_resolve(owner), name)
    except (ImportError, AttributeError):
        check_trl_surface()
        raise


def pad(tensors, padding_value=0, padding_side="right"):
    """``trl.trainer.utils.pad``: stack 1-D tensors padded to one length on ``padding_side``."""
    return _private("trl.trainer.utils", "pad")(tensors, padding_value=padding_value, padding_side=padding_side)


# --------------------------------------------------------------------------- fields that differ between versions


def checkpointing_field(arguments_class=None) -> str:
    """The ``TrainingArguments`` field that turns on activation checkpointing in the installed transformers:
    ``activation_checkpointing`` from 5.23 (``gradient_checkpointing`` is its deprecated alias there, to be removed
    in v6), ``gradient_checkpointing`` before (the GPU pin set's transformers 5.17, which vLLM 0.31 supports)."""
    import dataclasses

    if arguments_class is None:
        from transformers import TrainingArguments as arguments_class
    names = {f.name for f in dataclasses.fields(arguments_class)}
    for name in ("activation_checkpointing", "gradient_checkpointing"):
        if name in names:
            return name
    raise TRLSurfaceError(f"{arguments_class.__qualname__} has neither activation_checkpointing nor "
                          "gradient_checkpointing; adapt meml.training.trl_compat.checkpointing_field")
