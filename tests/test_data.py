"""Tests for meml.data: real files (skipped when ../shared/data is absent), malformed files, hub path."""

from __future__ import annotations

import importlib.util
import json
import time
from collections import Counter
from pathlib import Path

import datasets
import pytest

from meml.data import load_benchmark, load_records, normalize_row, read_jsonl
from meml.mathqa_options import format_options, parse_options
from meml.records import RECORD_FIELDS, Record

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

REAL_SPLITS = {
    ("gsm8k", "train"): 7473,
    ("gsm8k", "test"): 1319,
    ("mathqa", "dev"): 4475,
    ("mathqa", "test"): 2985,
    ("strategyqa", "train"): 2061,
    ("strategyqa", "dev"): 229,
}

_CACHE: dict[tuple[str, str], list[Record]] = {}


def real_dir() -> Path:
    if not (SHARED_DATA / "gsm8k" / "train.jsonl").is_file():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


def real(name: str, split: str) -> list[Record]:
    key = (name, split)
    if key not in _CACHE:
        _CACHE[key] = load_records(name, split, real_dir())
    return _CACHE[key]


def write_lines(path: Path, lines: list) -> Path:
    """Write JSON Lines: dict items are dumped, str items written verbatim."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    path.write_text(text, encoding="utf-8")
    return path


GSM = {"question": "Q?", "answer": "a = <<1+1=2>>2\n#### 2"}
MQA = {
    "Problem": "what is 1 + 1 ?",
    "Rationale": '"1 + 1 = 2 answer b"',
    "options": "a ) 1 , b ) 2 , c ) 3 , d ) 4 , e ) 5",
    "correct": "b",
    "annotated_formula": "add(n0,n1)",
    "linear_formula": "add(n0,n1)|",
    "category": "general",
}
SQA = {"qid": "q1", "term": "t", "description": "d", "question": "Is it?", "answer": True,
       "facts": ["Fact one.", "Fact two. "], "decomposition": ["?"], "evidence": []}


# ---------------------------------------------------------------------------------------------
# Real files
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "split"), list(REAL_SPLITS))
def test_real_counts_columns_ids(name, split):
    records = real(name, split)
    assert len(records) == REAL_SPLITS[(name, split)]
    assert len({r.id for r in records}) == len(records)
    assert all(r.task == name and r.dataset == name and r.split == split for r in records)
    assert all(r.slice == "" and r.meta == "" for r in records)
    assert all(r.rationale.endswith("\n#### " + r.answer) for r in records)
    assert all((r.options != "") == (name == "mathqa") for r in records)


def test_load_benchmark_dataset_columns_and_speed():
    root = real_dir()
    start = time.perf_counter()
    ds = load_benchmark("gsm8k", "train", root)
    elapsed = time.perf_counter() - start
    assert isinstance(ds, datasets.Dataset)
    assert ds.column_names == list(RECORD_FIELDS)
    assert all(ds.features[f].dtype == "string" for f in RECORD_FIELDS)
    assert len(ds) == 7473
    assert ds[0] == real("gsm8k", "train")[0].to_dict()
    assert elapsed < 3.0, f"loading gsm8k train took {elapsed:.2f}s"


def test_gsm8k_test0_and_commas():
    r = real("gsm8k", "test")[0]
    assert r.id == "gsm8k-test-0"
    assert r.question.startswith("Janet\u2019s ducks lay 16 eggs per day.")
    assert r.answer == "18"
    assert r.rationale == (
        "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\n"
        "She makes 9 * 2 = $<<9*2=18>>18 every day at the farmer\u2019s market.\n#### 18"
    )
    raw = read_jsonl(real_dir() / "gsm8k" / "train.jsonl")
    records = real("gsm8k", "train")
    with_commas = [i for i, row in enumerate(raw) if "," in row["answer"].rsplit("\n", 1)[1]]
    assert len(with_commas) == 79
    i = next(i for i, row in enumerate(raw) if row["answer"].endswith("\n#### 1,080"))
    assert records[i].answer == "1080"
    assert records[i].rationale.endswith("\n#### 1080")
    assert all("," not in records[i].answer for i in with_commas)
    assert all(r.answer.lstrip("-").isdigit() for r in records)


def test_mathqa_test0_and_list_options():
    r = real("mathqa", "test")[0]
    opts = "a ) 38 , b ) 27.675 , c ) 30 , d ) data inadequate , e ) none of these"
    assert r.id == "mathqa-test-0"
    assert r.answer == "a"
    assert r.options == opts
    assert r.question == (
        "a shopkeeper sold an article offering a discount of 5 % and earned a profit of 31.1 % . "
        "what would have been the percentage of profit earned if no discount had been offered ?"
        "\nOptions: " + opts
    )
    # One pair of quotes gone, mojibake kept.
    assert r.rationale.startswith("giving no discount to customer")
    assert "100 \u00e3 \u2014 ( 100 + 31.1 )" in r.rationale
    assert r.rationale.endswith("= 38 % answer a\n#### a")
    for split, expected in (("test", 66), ("dev", 115)):
        raw = read_jsonl(real_dir() / "mathqa" / f"{split}.jsonl")
        records = real("mathqa", split)
        listed = [i for i, row in enumerate(raw) if row["options"].startswith("[")]
        assert len(listed) == expected
        for i in listed:
            assert records[i].options == format_options(parse_options(raw[i]["options"]))
            assert records[i].options.startswith("a ) ") and "'" not in records[i].options[:4]
            assert records[i].question.endswith("\nOptions: " + records[i].options)
    assert Counter(r.answer for r in real("mathqa", "test")) == {"a": 614, "b": 605, "c": 676, "d": 628, "e": 462}


def test_strategyqa_dev0_and_bools():
    r = real("strategyqa", "dev")[0]
    assert r.id == "e0044a7b4d146d611e73"
    assert r.question == "Will the Albany in Georgia reach a hundred thousand occupants before the one in New York?"
    assert r.answer == "no"
    assert r.rationale == "Albany, GA has around 75,000 people Albany, NY has almost 100,000 people\n#### no"
    assert Counter(r.answer for r in real("strategyqa", "train")) == {"yes": 964, "no": 1097}
    assert Counter(r.answer for r in real("strategyqa", "dev")) == {"yes": 107, "no": 122}
    # The one duplicated question text (different qids) loads fine.
    questions = Counter(r.question for r in real("strategyqa", "train"))
    assert [q for q, n in questions.items() if n > 1] == ["Can you find Bob Marley's face in most smoke shops?"]


def test_missing_real_split_lists_available():
    with pytest.raises(FileNotFoundError) as info:
        load_records("strategyqa", "test", real_dir())
    message = str(info.value)
    assert str(real_dir() / "strategyqa" / "test.jsonl") in message
    assert "dev, test_unlabeled, train" in message


# ---------------------------------------------------------------------------------------------
# Malformed files
# ---------------------------------------------------------------------------------------------


def expect_error(tmp_path, name, lines, split="train", folder=None, exc=ValueError):
    path = write_lines(tmp_path / (folder or name.removeprefix("synth_")) / f"{split}.jsonl", lines)
    with pytest.raises(exc) as info:
        load_records(name, split, tmp_path)
    return path, str(info.value)


def test_invalid_json_line3(tmp_path):
    path, msg = expect_error(tmp_path, "gsm8k", [GSM, GSM, '{"question": "x", "answer": '])
    assert msg.startswith(f"{path}:3: invalid JSON")


def test_blank_line(tmp_path):
    path, msg = expect_error(tmp_path, "gsm8k", [GSM, "", GSM])
    assert msg.startswith(f"{path}:2: blank line")


def test_non_object_line(tmp_path):
    path, msg = expect_error(tmp_path, "mathqa", [MQA, "[1, 2]"], split="dev")
    assert msg.startswith(f"{path}:2: line must be a JSON object, got array")


def test_missing_field(tmp_path):
    row = {k: v for k, v in MQA.items() if k != "Rationale"}
    path, msg = expect_error(tmp_path, "mathqa", [MQA, MQA, MQA, row], split="test")
    assert msg.startswith(f"{path}:4: missing required field 'Rationale'")


def test_wrong_type(tmp_path):
    path, msg = expect_error(tmp_path, "gsm8k", [GSM, {"question": 7, "answer": "#### 7"}])
    assert msg.startswith(f"{path}:2: field 'question' must be a string, got number")
    path, msg = expect_error(tmp_path, "strategyqa", [SQA, {**SQA, "qid": "q2", "answer": "yes"}])
    assert msg.startswith(f"{path}:2: field 'answer' must be a boolean, got string")
    path, msg = expect_error(tmp_path, "strategyqa", [{**SQA, "facts": "one fact"}], split="dev")
    assert msg.startswith(f"{path}:1: field 'facts' must be an array of strings, got string")
    path, msg = expect_error(tmp_path, "strategyqa", [{**SQA, "facts": ["a", 3]}], split="dev")
    assert msg.startswith(f"{path}:1: field 'facts' must be an array of strings, item 1 is number")


def test_bad_letter(tmp_path):
    path, msg = expect_error(tmp_path, "mathqa", [MQA, {**MQA, "correct": "f"}], split="dev")
    assert msg.startswith(f"{path}:2: field 'correct' must be one of a, b, c, d, e, got 'f'")


def test_unparseable_options(tmp_path):
    path, msg = expect_error(tmp_path, "mathqa", [{**MQA, "options": "a ) 1 , b ) 2 , c ) 3"}], split="dev")
    assert msg.startswith(f"{path}:1: field 'options' does not parse into 5 options a-e")


def test_gsm8k_without_final_number(tmp_path):
    path, msg = expect_error(tmp_path, "gsm8k", [GSM, GSM, {"question": "Q", "answer": "so 5\nThe answer is 5"}])
    assert msg.startswith(f"{path}:3: field 'answer' has no final '#### <number>' line")
    path, msg = expect_error(tmp_path, "gsm8k", [{"question": "Q", "answer": "x\n#### five"}])
    assert msg.startswith(f"{path}:1: field 'answer' has no final '#### <number>' line")


def test_empty_file(tmp_path):
    path, msg = expect_error(tmp_path, "gsm8k", [])
    assert msg == f"{path}: file holds no rows"


def test_duplicate_ids(tmp_path):
    rows = [{**GSM, "id": "a"}, {**GSM, "id": "b"}, {**GSM, "id": "a"}]
    path, msg = expect_error(tmp_path, "synth_gsm8k", rows, split="rl")
    assert msg.startswith(f"{path}:3: duplicate id 'a' (first at {path}:1)")
    path, msg = expect_error(tmp_path, "strategyqa", [SQA, SQA])
    assert msg.startswith(f"{path}:2: duplicate id 'q1'")


def test_missing_split_file(tmp_path):
    write_lines(tmp_path / "gsm8k" / "train.jsonl", [GSM])
    write_lines(tmp_path / "gsm8k" / "rl.jsonl", [GSM])
    with pytest.raises(FileNotFoundError) as info:
        load_records("synth_gsm8k", "test", tmp_path)
    assert str(tmp_path / "gsm8k" / "test.jsonl") in str(info.value)
    assert "rl, train" in str(info.value)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_records("mathqa", "dev", tmp_path)
    with pytest.raises(ValueError, match="invalid split name"):
        load_records("gsm8k", "../gsm8k/train", tmp_path)


def test_synthetic_requires_data_dir(monkeypatch):
    def boom(*args, **kwargs):  # pragma: no cover - must not be reached
        raise AssertionError("load_dataset must not be called")

    monkeypatch.setattr(datasets, "load_dataset", boom)
    for name in ("synth_gsm8k", "synth_mathqa", "synth_strategyqa"):
        with pytest.raises(ValueError, match=f"synthetic dataset '{name}' needs data_dir"):
            load_records(name, "train")
    with pytest.raises(ValueError, match="unknown dataset"):
        load_records("aqua", "train")


def test_bad_meta(tmp_path):
    path, msg = expect_error(tmp_path, "synth_gsm8k", [{**GSM, "meta": "A"}])
    assert msg.startswith(f"{path}:1: field 'meta' must be an object, got string")
    path, msg = expect_error(tmp_path, "synth_gsm8k", [{**GSM, "meta": {"slice": 1}}])
    assert msg.startswith(f"{path}:1: field 'meta.slice' must be a string")


# ---------------------------------------------------------------------------------------------
# Synthetic files with meta
# ---------------------------------------------------------------------------------------------


def test_synthetic_meta_and_ids(tmp_path):
    meta = {"slice": "B", "program": ["add", 3, 4], "world": "w1"}
    write_lines(tmp_path / "gsm8k" / "rl.jsonl", [
        {"id": "w1-0001", "question": "Q1", "answer": "x\n#### 1,234", "meta": meta},
        {"question": "Q2", "answer": "#### -7"},
    ])
    write_lines(tmp_path / "mathqa" / "train.jsonl", [{**MQA, "meta": {"slice": "C"}}])
    write_lines(tmp_path / "strategyqa" / "test.jsonl", [{**SQA, "meta": {"slice": "A", "depth": 2}}])

    ds = load_benchmark("synth_gsm8k", "rl", tmp_path)
    assert ds.column_names == list(RECORD_FIELDS)
    first, second = ds[0], ds[1]
    assert first["id"] == "w1-0001" and second["id"] == "synth_gsm8k-rl-1"
    assert first["dataset"] == "synth_gsm8k" and first["task"] == "gsm8k" and first["split"] == "rl"
    assert first["answer"] == "1234" and first["rationale"] == "x\n#### 1234"
    assert first["slice"] == "B"
    assert first["meta"] == json.dumps(meta, sort_keys=True)
    assert json.loads(first["meta"]) == meta
    assert second["answer"] == "-7" and second["rationale"] == "#### -7"
    assert second["slice"] == "" and second["meta"] == ""

    (m,) = load_records("synth_mathqa", "train", tmp_path)
    assert (m.id, m.slice, m.answer, m.rationale) == ("synth_mathqa-train-0", "C", "b", "1 + 1 = 2 answer b\n#### b")
    (s,) = load_records("synth_strategyqa", "test", tmp_path)
    assert (s.id, s.slice, s.answer) == ("q1", "A", "yes")
    assert s.rationale == "Fact one. Fact two.\n#### yes"
    assert json.loads(s.meta) == {"depth": 2, "slice": "A"}


def test_normalize_row_public():
    r = normalize_row("gsm8k", "x", 5, {"question": "Q", "answer": "step\n####  10,000 "}, "src")
    assert (r.id, r.answer, r.rationale) == ("gsm8k-x-5", "10000", "step\n#### 10000")
    with pytest.raises(ValueError, match=r"^src: field 'answer' has no final"):
        normalize_row("gsm8k", "x", 0, {"question": "Q", "answer": "#### 1,0"}, "src")
    with pytest.raises(ValueError, match=r"^src: row must be a JSON object"):
        normalize_row("mathqa", "x", 0, ["a"], "src")  # type: ignore[arg-type]
    # Only ONE pair of surrounding quotes is removed.
    r = normalize_row("mathqa", "x", 0, {**MQA, "Rationale": ' ""quoted"" '}, "src")
    assert r.rationale == '"quoted"\n#### b'


# ---------------------------------------------------------------------------------------------
# Hub path (no network: load_dataset is replaced)
# ---------------------------------------------------------------------------------------------


class FakeHub:
    def __init__(self, rows):
        self.rows = rows
        self.calls = []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        return datasets.Dataset.from_list(self.rows)


def test_hub_gsm8k(monkeypatch):
    fake = FakeHub([GSM, {"question": "Q2", "answer": "y\n#### 1,080", "extra": "ok"}])
    monkeypatch.setattr(datasets, "load_dataset", fake)
    ds = load_benchmark("gsm8k", "test")
    assert fake.calls == [(("openai/gsm8k", "main"), {"split": "test"})]
    assert ds.column_names == list(RECORD_FIELDS)
    assert ds["id"] == ["gsm8k-test-0", "gsm8k-test-1"]
    assert ds["answer"] == ["2", "1080"]


def test_hub_mathqa_revision_and_alias(monkeypatch):
    listed = {**MQA, "options": "['a ) 1', 'b ) 2', 'c ) 3', 'd ) 4', 'e ) 5']"}
    fake = FakeHub([MQA, listed])
    monkeypatch.setattr(datasets, "load_dataset", fake)
    records = load_records("mathqa", "dev")
    assert fake.calls == [(("allenai/math_qa",), {"split": "validation", "revision": "refs/convert/parquet"})]
    assert [r.id for r in records] == ["mathqa-dev-0", "mathqa-dev-1"]
    assert records[1].options == "a ) 1 , b ) 2 , c ) 3 , d ) 4 , e ) 5"
    load_records("mathqa", "train")
    assert fake.calls[-1] == (("allenai/math_qa",), {"split": "train", "revision": "refs/convert/parquet"})


def test_hub_strategyqa(monkeypatch):
    row = {k: v for k, v in SQA.items() if k != "evidence"}
    fake = FakeHub([row, {**row, "qid": "q2", "answer": False}])
    monkeypatch.setattr(datasets, "load_dataset", fake)
    records = load_records("strategyqa", "train")
    assert fake.calls == [(("ChilleD/StrategyQA",), {"split": "train"})]
    assert [(r.id, r.answer) for r in records] == [("q1", "yes"), ("q2", "no")]


def test_hub_errors_name_dataset_split_row(monkeypatch):
    fake = FakeHub([MQA, MQA, {**MQA, "correct": "z"}])
    monkeypatch.setattr(datasets, "load_dataset", fake)
    with pytest.raises(ValueError) as info:
        load_records("mathqa", "test")
    assert str(info.value).startswith("hub allenai/math_qa split 'test' row 2: field 'correct'")
    calls = len(fake.calls)
    with pytest.raises(ValueError, match="unknown split 'dev' for strategyqa on the hub"):
        load_records("strategyqa", "dev")
    assert len(fake.calls) == calls


# ---------------------------------------------------------------------------------------------
# Gold rationales score 1.0 with the reward function (when meml.rewards exists)
# ---------------------------------------------------------------------------------------------


@pytest.mark.skipif(importlib.util.find_spec("meml.rewards") is None, reason="meml.rewards not written yet")
@pytest.mark.parametrize(("name", "split"), list(REAL_SPLITS))
def test_gold_rationales_score_one(name, split):
    from meml.rewards import accuracy_reward

    failures = []
    for r in real(name, split):
        score = accuracy_reward(r.task, r.rationale, r.answer, options=r.options or None)
        if score != 1.0:
            failures.append((r.id, score, r.rationale[-80:], r.answer))
    assert not failures, f"{len(failures)} gold rationales do not score 1.0, e.g. {failures[:3]}"
