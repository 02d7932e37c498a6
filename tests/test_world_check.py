"""The world check (issue 16): the dev split, slice kinds, the acceptance lines, the stage and its table."""

import json
import shutil

import pandas as pd
import pytest

from meml import paths
from meml.experts.sources import blind_slice
from meml.pipeline.settings import load_settings, with_changes
from meml.pipeline.stages import slice_kind
from reports.world_check import acceptance, to_markdown


def test_the_world_has_a_dev_split_apart_from_the_others():
    from meml.world.generate import WorldConfig, generate_task

    splits = {"train": 30, "test": 30}
    before = generate_task("gsm8k", WorldConfig(seed=0, splits=splits))
    after = generate_task("gsm8k", WorldConfig(seed=0, splits={**splits, "dev": 30}))
    assert after["train"] == before["train"] and after["test"] == before["test"]  # earlier splits keep their items
    questions = {split: {r["question"] for r in rows} for split, rows in after.items()}
    assert len(questions["dev"]) == 30 and not questions["dev"] & (questions["train"] | questions["test"])
    assert load_settings().world.splits["dev"] == 300 and load_settings().data.dev_split["synth_mathqa"] == "dev"


def test_blind_slices_of_the_sources():
    assert blind_slice({"kind": "gold"}) is None
    assert [blind_slice(s) for s in load_settings().experts.sources] == ["C", "A", "B"]  # every expert has one
    assert blind_slice({"kind": "programmatic", "style": "terse", "flaw": "sub_as_add"}) == "A"
    assert blind_slice({"kind": "programmatic", "style": "verify", "flaw": "double_as_plus2"}) == "B"
    assert blind_slice({"kind": "programmatic", "style": "verify", "flaw": None}) is None


@pytest.mark.parametrize("method, expert, slice_, kind", [
    ("Expert1-SFT", 1, "A", "own_blind"),
    ("Expert1-SFT", 0, "A", "other"),  # another prompt of the same model
    ("Expert1-SFT", 1, "B", "other"),
    ("MoE-SFT", 1, "A", "other"),  # no expert of its own
    ("Expert2-SFT", 2, "H", "hard"),
    ("Expert2-SFT", 2, "all", "all"),
])
def test_slice_kinds(method, expert, slice_, kind):
    assert slice_kind(method, expert, slice_, {0: None, 1: "A", 2: "B"}, ("H",)) == kind


def _rows(blind_greedy=0.0, blind_pass=0.0, other=0.95, hard_pass=0.0, overall=(0.80, 0.81, 0.82)):
    """A world check of one (family, dataset): three ExpertK-SFT models under their own prompts and MoE under 0."""
    rows = []
    for k, total in enumerate(overall):
        model = f"Expert{k}-SFT"
        for slice_, kind, greedy, passk in (("ABC"[k], "own_blind", blind_greedy, blind_pass),
                                            ("C" if k < 2 else "A", "other", other, 1.0),
                                            ("H", "hard", 0.0, hard_pass), ("all", "all", total, 0.9)):
            rows.append({"family": "qwen2", "dataset": "synth_gsm8k", "model": model, "expert": k, "slice": slice_,
                         "slice_kind": kind, "greedy": greedy, "pass8": passk, "n": 50})
    rows.append({"family": "qwen2", "dataset": "synth_gsm8k", "model": "MoE-SFT", "expert": 0, "slice": "H",
                 "slice_kind": "hard", "greedy": 0.0, "pass8": hard_pass, "n": 50})
    return pd.DataFrame(rows)


def _base_rows(dataset="synth_mathqa", greedy=(0.95, 0.92, 0.91)):
    rows = _rows().assign(dataset=dataset)
    base = [{"family": "qwen2", "dataset": dataset, "model": "base", "expert": "none", "slice": s, "slice_kind": "other",
             "greedy": g, "pass8": None, "n": 50} for s, g in zip("ABC", greedy)]
    base.append({"family": "qwen2", "dataset": dataset, "model": "base", "expert": "none", "slice": "H",
                 "slice_kind": "hard", "greedy": 0.5, "pass8": None, "n": 50})  # never read by the hard line
    return pd.concat([rows, pd.DataFrame(base)], ignore_index=True)


def test_a_world_that_holds_its_design_passes_every_line():
    lines = acceptance(_rows(), 8)
    assert len(lines) == 3 * 2 + 2 and all(line["holds"] for line in lines)
    assert "8 of 8 lines hold" in to_markdown(_rows(), 8, lines)


def test_mathqa_base_line_and_strategyqa_shortcut_line():
    lines = acceptance(_base_rows(), 8)
    assert len(lines) == 9 and all(line["holds"] for line in lines), lines
    assert "A 95.0, B 92.0, C 91.0" in lines[-1]["measured"]
    failed = [line["line"] for line in acceptance(_base_rows(greedy=(0.95, 0.89, 0.99)), 8) if not line["holds"]]
    assert failed == ["pretrained base (no prompt) >= 90% greedy on every non-hard slice"]
    strategy = _rows().assign(dataset="synth_strategyqa")
    held = acceptance(strategy, 8, {("qwen2", "synth_strategyqa"): 0.55})
    assert held[-1]["holds"] and held[-1]["measured"] == "best rule 55.0%"
    assert not acceptance(strategy, 8, {("qwen2", "synth_strategyqa"): 0.56})[-1]["holds"]


def test_cue_rule_accuracy_hand_computed():
    from meml.pipeline.stages import cue_rule_accuracy
    from meml.records import Record

    def record(i, slice_, answer, comparator=None):
        meta = {"slice": slice_, **({"comparator": comparator} if comparator else {})}
        return Record(id=str(i), task="strategyqa", dataset="synth_strategyqa", split="dev", question="q",
                      answer=answer, rationale=f"#### {answer}", meta=json.dumps(meta))

    balanced = [record(0, "A", "yes"), record(1, "A", "no"), record(2, "B", "yes"), record(3, "B", "no")]
    assert cue_rule_accuracy(balanced) == 0.5
    cued = [record(0, "A", "yes", "more"), record(1, "A", "yes", "more"), record(2, "A", "no", "fewer"),
            record(3, "B", "no", "more")]
    assert cue_rule_accuracy(cued) == 1.0  # slice and comparator give every answer: the old world's shortcut
    assert cue_rule_accuracy([]) is None


@pytest.mark.parametrize("change, failing", [
    ({"blind_greedy": 0.06}, "blind slice"),
    ({"blind_pass": 0.03}, "blind slice"),
    ({"other": 0.89}, ">= 90% greedy on every other slice"),
    ({"hard_pass": 0.02}, "hard slice"),
    ({"overall": (0.80, 0.81, 0.84)}, "overall greedy within 3 points"),
])
def test_each_acceptance_line_fails_on_its_own(change, failing):
    failed = [line["line"] for line in acceptance(_rows(**change), 8) if not line["holds"]]
    assert failed and all(failing in line for line in failed)


def test_an_expert_without_a_blind_slice_and_a_world_without_a_hard_slice_fail():
    rows = _rows()
    rows = rows[~((rows.model == "Expert0-SFT") & (rows.slice_kind == "own_blind")) & (rows.slice_kind != "hard")]
    failed = {line["line"]: line["measured"] for line in acceptance(rows, 8) if not line["holds"]}
    assert failed == {"Expert0-SFT: blind slice greedy <= 5%, pass@8 <= 2%": "no blind slice",
                      "hard slice: pass@8 <= 1% under every prompt of every SFT model": "no hard slice in this world"}


@pytest.mark.slow
def test_world_check_stage_and_table(tiny_model_dir, small_world, tmp_path):
    """The stage on stand-in SFT models (the random tiny model), then the table from its file."""
    from meml.pipeline import stages
    from reports.world_check import write_world_check

    shutil.copytree(small_world, paths.world_dir(tmp_path))
    dev = paths.world_dir(tmp_path) / "gsm8k" / "dev.jsonl"
    shutil.copyfile(paths.world_dir(tmp_path) / "gsm8k" / "test.jsonl", dev)  # the fixture world has no dev split
    config = with_changes(load_settings(), results_dir=str(tmp_path), datasets=["synth_gsm8k"],
                          models={"families": ["qwen2"]}, sft={"methods": ["Expert1-SFT", "MoE-SFT"]},
                          rl={"methods": []}, meml={"methods": []},
                          world_check={"samples": 2, "max_items": 9}, eval={"max_new_tokens": 6, "batch_size": 16})
    for method in ("Expert1-SFT", "MoE-SFT"):
        model = paths.sft_dir(tmp_path, "qwen2", "synth_gsm8k", method)
        shutil.copytree(tiny_model_dir, model)
        (model / "run.json").write_text("{}")
    shutil.copytree(tiny_model_dir, paths.base_model_dir(tmp_path, "qwen2"))
    out = stages.world_check(config, "qwen2", "synth_gsm8k")
    data = json.loads(out.read_text())
    assert data["blind_slices"] == {"0": "C", "1": "A", "2": "B"} and data["samples"] == 2
    assert data["shortcut"] is None  # a StrategyQA-only figure
    rows = pd.DataFrame(data["rows"])
    slices = sorted(rows.slice.unique())
    assert len(rows) == (2 * 3 + 1) * len(slices) and "all" in slices
    base = rows[rows.model == "base"]
    assert set(base.expert) == {"none"} and base.pass2.isna().all() and base.greedy.between(0, 1).all()
    rows = rows[rows.model != "base"]
    assert set(rows.columns) >= {"family", "dataset", "model", "expert", "slice", "slice_kind", "greedy", "pass2"}
    mine = rows[(rows.model == "Expert1-SFT") & (rows.expert == 1) & (rows.slice == "A")]
    assert mine.slice_kind.tolist() == ["own_blind"]
    assert rows.greedy.between(0, 1).all() and rows.pass2.between(0, 1).all()
    assert (rows[rows.slice == "all"].n == 9).all()
    md, csv = write_world_check(config)
    assert "## Acceptance (issue 16)" in md.read_text() and csv.read_text().startswith(
        "family,dataset,model,expert,slice,slice_kind,greedy,pass2,n")
