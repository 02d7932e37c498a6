"""The declared private TRL/transformers surface (meml/training/trl_compat.py) against the installed versions."""

import inspect
import re
from pathlib import Path

import pytest

from meml.training import trl_compat
from meml.training.trl_compat import (
    PRIVATE_SURFACE,
    PrivateMember,
    TRLSurfaceError,
    check_trl_surface,
)

REPO = Path(__file__).resolve().parents[1]


def _resolve(path):
    return trl_compat._resolve(path)


def test_the_installed_trl_provides_every_declared_member():
    check_trl_surface()  # raises TRLSurfaceError naming every problem otherwise


@pytest.mark.parametrize("member", [m for m in PRIVATE_SURFACE if m.params is not None], ids=lambda m: m.qualname)
def test_declared_signatures_match_the_installed_trl(member):
    function = getattr(_resolve(member.owner), member.name)
    names = [n for n in inspect.signature(function).parameters if n != "self"]
    if member.prefix:
        assert names[:len(member.params)] == list(member.params)
    else:
        assert names == list(member.params)


def test_a_changed_signature_and_a_missing_function_give_one_clear_error(monkeypatch):
    import trl
    import trl.trainer.utils
    from trl import GRPOTrainer

    def _calculate_rewards(self, inputs, prompts, completions):  # TRL dropped completion_ids_list
        raise AssertionError("never called")

    monkeypatch.setattr(GRPOTrainer, "_calculate_rewards", _calculate_rewards)
    monkeypatch.delattr(trl.trainer.utils, "pad")
    with pytest.raises(TRLSurfaceError) as caught:
        check_trl_surface()
    message = str(caught.value)
    assert f"trl {trl.__version__}" in message and "meml/training/trl_compat.py" in message
    problems = [line for line in message.splitlines() if line.startswith("  - ")]
    assert problems == [
        "  - trl.GRPOTrainer._calculate_rewards: parameters changed: expected (inputs, prompts, completions, "
        "completion_ids_list), found (inputs, prompts, completions)",
        "  - trl.trainer.utils.pad: missing",
    ]
    with pytest.raises(TRLSurfaceError, match=re.escape("trl.trainer.utils.pad: missing")):
        trl_compat.pad([])  # the project's import of the private function fails the same way


def test_a_forwarding_wrapper_on_the_class_is_not_a_changed_signature(monkeypatch):
    from trl import GRPOTrainer

    original = GRPOTrainer._generate_single_turn

    def timed(trainer, *args, **kwargs):  # as bench/gpu_smoke.py's GenerationTimer installs it
        return original(trainer, *args, **kwargs)

    monkeypatch.setattr(GRPOTrainer, "_generate_single_turn", timed)
    check_trl_surface()


def test_trainers_check_the_surface_before_anything_else(monkeypatch):
    from trl import GRPOTrainer

    from meml.training.grpo import SparsityGRPOTrainer

    monkeypatch.setattr(GRPOTrainer, "_compute_loss", lambda self, model, inputs, extra: None)
    trl_compat.ensure_trl_surface.cache_clear()
    try:
        with pytest.raises(TRLSurfaceError, match=re.escape("trl.GRPOTrainer._compute_loss: parameters changed")):
            SparsityGRPOTrainer(model=None)
    finally:
        monkeypatch.undo()
        trl_compat.ensure_trl_surface.cache_clear()


def test_hooks_that_trl_stopped_calling_and_lost_attributes_are_named():
    members = (
        PrivateMember("trl.GRPOTrainer", "_compute_loss", ("model", "inputs"), called_in="trl.trainer.utils"),
        PrivateMember("trl.GRPOTrainer", "_no_such_attribute"),
        PrivateMember("trl.GRPOTrainer", "_metrics"),
        PrivateMember("trl.no_such_module", "pad", ("tensors",)),
    )
    problems = trl_compat.surface_problems(members)
    assert problems[:2] == [
        "trl.GRPOTrainer._compute_loss: no longer called by trl.trainer.utils (the override here would never run)",
        "trl.GRPOTrainer._no_such_attribute: missing (no longer assigned as self._no_such_attribute by "
        "trl.GRPOTrainer)",
    ]  # _metrics is fine
    assert len(problems) == 3 and problems[2].startswith("trl.no_such_module.pad: owner trl.no_such_module not found")


def _project_trainer_sources() -> dict[Path, str]:
    files = sorted((REPO / "meml").rglob("*.py")) + sorted((REPO / "baselines").rglob("*.py"))
    return {f: f.read_text(encoding="utf-8") for f in files if f.name != "trl_compat.py"}


def test_every_private_trl_member_the_project_uses_is_declared():
    """Private names the trainers override, call or read that TRL or transformers define must be in the table."""
    from trl import GRPOTrainer

    library = [inspect.getsource(c) for c in inspect.getmro(GRPOTrainer)
               if c.__module__.split(".")[0] in ("trl", "transformers")]
    declared = {m.name for m in PRIVATE_SURFACE if m.owner == "trl.GRPOTrainer"}
    undeclared = set()
    for path, text in _project_trainer_sources().items():
        if "GRPOTrainer" not in text:
            continue
        names = set(re.findall(r"(?:self|super\(\)|trainer)\.(_[A-Za-z]\w*)", text)) | set(re.findall(r"def (_[A-Za-z]\w*)", text))
        for name in names:
            provided = hasattr(GRPOTrainer, name) or any(re.search(rf"self\.{name}\s*(?::[^=\n]+)?=[^=]", s) for s in library)
            if provided and name not in declared:
                undeclared.add(f"{path.relative_to(REPO)}: {name}")
    assert not undeclared, f"declare these in meml/training/trl_compat.py: {sorted(undeclared)}"


def test_private_trl_modules_are_imported_only_through_trl_compat():
    pattern = re.compile(r"^\s*(from trl\.trainer[\w.]* import|import trl\.trainer)", re.MULTILINE)
    offenders = [str(p.relative_to(REPO)) for p, text in _project_trainer_sources().items() if pattern.search(text)]
    assert not offenders, f"import private TRL functions through meml.training.trl_compat: {offenders}"


def test_checkpointing_field_follows_the_installed_transformers():
    """transformers >= 5.23 names it activation_checkpointing; the GPU pin set's 5.17 only has gradient_checkpointing."""
    import dataclasses

    from meml.training.trl_compat import TRLSurfaceError, checkpointing_field

    @dataclasses.dataclass
    class Old:
        gradient_checkpointing: bool = False

    @dataclasses.dataclass
    class New:
        activation_checkpointing: bool = False
        gradient_checkpointing: bool | None = None  # the deprecated alias

    @dataclasses.dataclass
    class Neither:
        bf16: bool = False

    assert checkpointing_field(Old) == "gradient_checkpointing"
    assert checkpointing_field(New) == "activation_checkpointing"
    import transformers

    installed = tuple(int(x) for x in transformers.__version__.split(".")[:2])
    assert checkpointing_field() == ("activation_checkpointing" if installed >= (5, 23) else "gradient_checkpointing")
    with pytest.raises(TRLSurfaceError, match="neither"):
        checkpointing_field(Neither)
