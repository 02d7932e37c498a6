"""The synthetic world: determinism, exact benchmark schemas, slices, no shortcuts, teacher errors."""

import collections
import json
import re

import pytest

from meml.data import load_records
from meml.experts.sources import GoldSource, ProgrammaticTeacher, make_source
from meml.rewards import accuracy_reward, extract_answer
from meml.world.generate import WorldConfig, generate_task, write_world
from meml.world.programs import Difficulty, Program, Step, wrong_procedures
from meml.world.render import STYLES, gsm8k_solution

SMALL = WorldConfig(seed=3, splits={"train": 90, "test": 60})


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("world")
    write_world(out, SMALL)
    return out


def test_same_seed_same_rows_other_seed_other_rows():
    assert generate_task("gsm8k", SMALL) == generate_task("gsm8k", SMALL)
    other = WorldConfig(seed=4, splits={"train": 90, "test": 60})
    assert generate_task("gsm8k", SMALL)["train"] != generate_task("gsm8k", other)["train"]


@pytest.mark.parametrize("task,keys", [
    ("gsm8k", {"question", "answer"}),
    ("mathqa", {"Problem", "Rationale", "options", "correct", "annotated_formula", "linear_formula", "category"}),
    ("strategyqa", {"qid", "term", "description", "question", "answer", "facts", "decomposition", "evidence"}),
])
def test_rows_have_the_benchmark_schema_plus_meta(task, keys):
    for rows in generate_task(task, SMALL).values():
        for row in rows:
            assert set(row) == keys | {"meta"}
            assert row["meta"]["slice"] in ("A", "B", "C", "H")


@pytest.mark.parametrize("dataset", ["synth_gsm8k", "synth_mathqa", "synth_strategyqa"])
def test_rows_pass_the_real_loader_and_gold_scores_one(world, dataset):
    for split in ("train", "test"):
        records = load_records(dataset, split, world)
        assert len(records) == SMALL.splits[split]
        for r in records:
            assert accuracy_reward(r.task, r.rationale, r.answer, r.options or None) == 1.0


def test_splits_share_no_question():
    rows = generate_task("strategyqa", SMALL)
    train = {r["question"] for r in rows["train"]}
    assert not train & {r["question"] for r in rows["test"]}


def test_slices_are_balanced_hard_only_where_shared_and_answers_spread():
    config = WorldConfig(seed=0, splits={"pretrain": 90, "train": 90, "test": 900}, hard_share={"test": 0.1})
    generated = generate_task("gsm8k", config)
    rows = generated["test"]
    slices = collections.Counter(r["meta"]["slice"] for r in rows)
    assert slices == {"A": 270, "B": 270, "C": 270, "H": 90}
    for split in ("pretrain", "train"):  # the hard cue never appears where the experts learn
        assert {r["meta"]["slice"] for r in generated[split]} == {"A", "B", "C"}
        assert not any("halves" in r["question"] for r in generated[split])
    assert all("halves" in r["question"] for r in rows if r["meta"]["slice"] == "H")
    answers = collections.Counter(int(r["answer"].rsplit("#### ", 1)[1]) for r in rows)
    assert min(answers) >= 2 and max(answers) <= 15
    assert len(answers) == 14
    assert max(answers.values()) <= 0.15 * len(rows)  # no pile-up on any one answer


def test_hard_share_is_checked():
    with pytest.raises(ValueError, match="hard_share.train"):
        WorldConfig(hard_share={"train": 0.2})
    with pytest.raises(ValueError, match=r"hard_share.rl"):
        WorldConfig(hard_share={"rl": 1.5})


def test_mathqa_options_sorted_rank_uniform_and_strategyqa_balanced_per_slice():
    config = WorldConfig(seed=0, splits={"test": 1500}, hard_share={"test": 0.2})
    rows = generate_task("mathqa", config)["test"]
    for row in rows:  # ascending values, so the letter is the answer's rank
        values = [int(v) for v in re.findall(r"[a-e] \) (\d+)", row["options"])]
        assert values == sorted(values) and len(set(values)) == 5
    for slice_, possible in {"A": "abcd", "B": "bcde", "C": "bcde", "H": "abcde"}.items():
        letters = collections.Counter(r["correct"] for r in rows if r["meta"]["slice"] == slice_)
        share = sum(letters.values()) / len(possible)
        tolerance = 0.45 if slice_ == "H" else 0.25  # small hard answers leave no room below them for high ranks
        assert set(letters) <= set(possible) and all(abs(letters[k] - share) < tolerance * share for k in possible), \
            (slice_, letters)
    middle = sum(r["correct"] == "c" for r in rows) / len(rows)
    assert middle < 0.26  # the old world had the answer in the middle in 43% of items
    rows = generate_task("strategyqa", config)["test"]
    for slice_ in "ABCH":
        answers = [r["answer"] for r in rows if r["meta"]["slice"] == slice_]
        assert abs(sum(answers) - len(answers) / 2) <= 1, slice_


def test_strategyqa_wrong_target_is_the_flawed_value():
    config = WorldConfig(seed=2, splits={"test": 300}, hard_share={"test": 0.2})
    for row in generate_task("strategyqa", config)["test"]:
        program = Program.from_json(row["meta"]["program"])
        target = row["meta"]["target"]
        assert f"exactly {target} " in row["question"]
        if row["answer"]:
            assert target == program.result()
        else:
            assert target in {program.result(frozenset([w])) for w in wrong_procedures(program)}


def test_program_flaws_hand_computed():
    hard = Program(8, (Step("halve", 2), Step("add", 2), Step("halve", 2)))
    assert hard.slice() == "H" and hard.result() == 3  # (8/2+2)/2
    assert wrong_procedures(hard) == ("halve_as_double", "halve_as_triple", "halve_as_plus2")
    assert hard.result(frozenset(["halve_as_plus2"])) == 14  # (8+2+2)+2
    assert Program(8, (Step("halve", 2), Step("add", 2))).result(frozenset(["halve_as_triple"])) == 26
    tripled = Program(2, (Step("add", 2), Step("triple", 3)))
    assert tripled.slice() == "C"
    assert tripled.result() == 12 and tripled.result(frozenset(["triple_as_double"])) == 8
    assert Program(7, (Step("add", 3), Step("double", 2), Step("sub", 4))).slice() == "mixed"
    program = Program(7, (Step("add", 3), Step("double", 2), Step("sub", 4)))
    assert program.result() == 16  # (7+3)*2-4
    assert program.result(frozenset(["sub_as_add"])) == 24  # (7+3)*2+4
    assert program.result(frozenset(["double_as_plus2"])) == 8  # (7+3)+2-4
    assert gsm8k_solution(program, "gold") == "7+3 = <<7+3=10>>10\n10*2 = <<10*2=20>>20\n20-4 = <<20-4=16>>16\n#### 16"
    assert gsm8k_solution(program, "terse") == "7+3=10, 10*2=20, 20-4=16.\n#### 16"
    verify = gsm8k_solution(program, "verify", frozenset(["double_as_plus2"]))
    assert verify == "Step 1: 7 + 3 = 10\nStep 2: 10 + 2 = 12\nStep 3: 12 - 4 = 8\nCheck: 8 + 4 = 12\n#### 8"


def test_difficulty_is_checked():
    with pytest.raises(ValueError, match="min_steps"):
        Difficulty(min_steps=3, max_steps=2)


@pytest.mark.parametrize("dataset", ["synth_gsm8k", "synth_mathqa", "synth_strategyqa"])
def test_teachers_err_only_on_their_slice_at_the_configured_rate(world, dataset):
    records = load_records(dataset, "train", world) + load_records(dataset, "test", world)
    for flaw, bad_slice in (("sub_as_add", "A"), ("double_as_plus2", "B"), ("triple_as_double", "C")):
        teacher = ProgrammaticTeacher(style="terse", flaw=flaw, error_rate=1.0)
        for record, text in zip(records, teacher.trajectories(records)):
            correct = accuracy_reward(record.dataset, text, record.answer, record.options or None)
            assert correct == (0.0 if record.slice == bad_slice else 1.0), (record.id, text)
            assert text.endswith("#### " + extract_answer(record.dataset, text, record.options or None))
    never = ProgrammaticTeacher(style="verify", flaw="sub_as_add", error_rate=0.0)
    assert all(accuracy_reward(r.task, t, r.answer, r.options or None) == 1.0
               for r, t in zip(records, never.trajectories(records)))


def test_error_rate_is_the_share_of_the_slice_gotten_wrong(tmp_path):
    write_world(tmp_path, WorldConfig(seed=1, splits={"train": 1500}), tasks=("gsm8k",))
    records = [r for r in load_records("synth_gsm8k", "train", tmp_path) if r.slice == "A"]
    teacher = ProgrammaticTeacher(style="terse", flaw="sub_as_add", error_rate=0.8, seed=5)
    wrong = sum(accuracy_reward(r.task, t, r.answer) == 0.0 for r, t in zip(records, teacher.trajectories(records)))
    assert abs(wrong / len(records) - 0.8) < 0.06
    assert teacher.trajectories(records) == teacher.trajectories(records)  # seeded per item


def test_styles_differ_and_sources_build_from_config(world):
    records = load_records("synth_mathqa", "test", world)[:5]
    texts = {style: ProgrammaticTeacher(style=style).trajectories(records) for style in STYLES}
    assert texts["gold"] == GoldSource().trajectories(records)
    assert len({json.dumps(v) for v in texts.values()}) == 3
    assert isinstance(make_source({"kind": "gold"}), GoldSource)
    with pytest.raises(ValueError, match="kind"):
        make_source({"kind": "llm"})
    with pytest.raises(ValueError, match="flaw"):
        ProgrammaticTeacher(style="terse", flaw="nonsense")


def test_programmatic_teacher_refuses_real_records():
    from meml.records import Record

    record = Record(id="x", task="gsm8k", dataset="gsm8k", split="test", question="q", answer="1",
                    rationale="#### 1")
    with pytest.raises(ValueError, match="synthetic"):
        ProgrammaticTeacher(style="terse").trajectories([record])


def test_arithmetic_drills_hand_checked_and_seeded():
    from meml.world.drills import arithmetic_facts, drill_rows

    small = Difficulty(max_start=3, max_operand=2, max_value=4)
    facts = arithmetic_facts(small)
    assert (3, "-", 2, 1) in facts and (6, "+", 2, 8) in facts and (6, "*", 3, 18) in facts
    assert (1, "-", 1, 0) not in facts  # values stay >= 1
    assert (6, "/", 2, 3) in facts and (6, "/", 3, 2) in facts and (5, "/", 2, 2) not in facts
    rows = drill_rows(small, 40, seed=1, facts_per_row=4)
    assert any(" vs " in row for row in rows) and any("=" in row for row in rows)
    assert rows == drill_rows(small, 40, seed=1, facts_per_row=4) != drill_rows(small, 40, seed=2, facts_per_row=4)
    for row in rows:
        lines = row.split("\n")
        assert len(lines) == 4
        for line in lines:  # every written fact is true arithmetic in one of the three forms, or a comparison
            compared = re.fullmatch(r"(\d+) vs (\d+) (yes|no)", line)
            if compared:
                x, y, verdict = compared.groups()
                assert (x == y) == (verdict == "yes") and abs(int(x) - int(y)) <= 4 and int(y) >= 1
                continue
            match = re.fullmatch(r"(\d+) ?([-+*/]) ?(\d+) ?= ?(?:<<\1\2\3=(\d+)>>)?(\d+)", line)
            assert match, line
            x, op, b, annotated, y = match.groups()
            assert {"+": int(x) + int(b), "-": int(x) - int(b), "*": int(x) * int(b), "/": int(x) / int(b)}[op] == int(y)
            assert annotated in (None, y)
