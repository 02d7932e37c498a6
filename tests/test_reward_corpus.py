"""The labelled grading corpus: every completion graded as a careful human grader labelled it.

``tests/data/reward_corpus/*.jsonl`` holds completions written the way real models write (real GSM8K
and MathQA rationales, model-style endings, hedges, LaTeX, echoed option lists, base-model
continuations, LaTeX bombs), each with the label a careful grader gives it under the rules of
``docs/method.md`` ("Grading"). Every item must be graded as labelled, and no call may take 2 s.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path

import pytest

from meml.rewards import accuracy_reward

CORPUS = Path(__file__).parent / "data" / "reward_corpus"
KEYS = {"id", "task", "class", "completion", "reference", "options", "label", "note"}


def _items() -> list[dict]:
    items = []
    for path in sorted(CORPUS.glob("*.jsonl")):
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                item = json.loads(line)
                item["_where"] = f"{path.name}:{lineno}"
                items.append(item)
    return items


ITEMS = _items()


def test_corpus_shape():
    by_task = defaultdict(list)
    for item in ITEMS:
        assert KEYS <= set(item), item["_where"]
        assert item["label"] in (0, 1), item["_where"]
        by_task[item["task"]].append(item)
    assert sum(map(len, by_task.values())) >= 300
    assert set(by_task) == {"gsm8k", "mathqa", "strategyqa"}
    for task, items in by_task.items():
        labels = defaultdict(set)
        for item in items:
            labels[item["class"]].add(item["label"])
        assert all(seen == {0, 1} for seen in labels.values()), (task, dict(labels))  # both errors per class
    assert len({item["id"] for item in ITEMS}) == len(ITEMS)


@pytest.mark.parametrize("item", ITEMS, ids=[item["id"] for item in ITEMS])
def test_graded_as_labelled(item):
    start = time.perf_counter()
    score = accuracy_reward(item["task"], item["completion"], item["reference"], item["options"])
    elapsed = time.perf_counter() - start
    assert score == item["label"], f"{item['_where']} ({item['class']}): {item['note']}"
    assert elapsed < 2.0, f"{item['_where']} took {elapsed:.2f} s"
