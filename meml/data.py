"""Loading GSM8K, MathQA, StrategyQA and their synthetic variants as normalized records.

Two sources, one normalization:

* **local JSON Lines** (``data_dir`` given) in each benchmark's ORIGINAL schema, laid out as
  ``<data_dir>/gsm8k/{train,test}.jsonl``, ``<data_dir>/mathqa/{dev,test}.jsonl`` and
  ``<data_dir>/strategyqa/{train,dev}.jsonl``. Synthetic datasets (``synth_gsm8k`` ...) use the
  same layout and schema under their own ``data_dir`` (``synth_gsm8k`` reads
  ``<data_dir>/gsm8k/<split>.jsonl``) with any split name, and always need ``data_dir``.
* **the Hugging Face hub** (``data_dir=None``) through :func:`datasets.load_dataset`; see
  :data:`HUB_SOURCES` for the repositories and revisions used.

Every row becomes a :class:`meml.records.Record` (:func:`normalize_row`):

* GSM8K: ``id`` ``gsm8k-<split>-<index>`` (0-based); ``answer`` is the final ``#### X`` number with
  thousands separators removed; ``rationale`` is the solution with its final line rewritten as
  ``#### <answer>`` (calculator annotations ``<<a*b=c>>`` are kept).
* MathQA: ``id`` ``mathqa-<split>-<index>``; ``question`` is ``Problem`` + ``"\\nOptions: "`` + the
  canonical options string (both upstream option forms are accepted, see
  :func:`meml.mathqa_options.parse_options`); ``answer`` is ``correct`` (``a``-``e``); ``rationale`` is
  ``Rationale`` stripped of surrounding whitespace and of ONE pair of surrounding literal double
  quotes, then ``"\\n#### <letter>"``. The source's mojibake is kept as is.
* StrategyQA: ``id`` is ``qid``; ``answer`` is ``yes``/``no`` from the JSON boolean; ``rationale`` is
  the facts (each stripped of surrounding whitespace: 385 train facts end in a stray space) joined
  with single spaces, then ``"\\n#### yes|no"``. ``question`` is kept verbatim.
* Synthetic rows (dataset name starting with ``synth_``) may carry an ``id`` key (non-empty
  string), used as the record id instead of the index scheme. Any row may carry a ``meta`` key (a
  JSON object): its ``slice`` (a string, optional) becomes ``Record.slice`` and the whole object
  becomes ``Record.meta`` as ``json.dumps(meta, sort_keys=True)``. Real data has neither, so real
  records have ``slice == meta == ""``.

Validation is strict and nothing is skipped: every line must be one JSON object (blank lines,
invalid JSON and non-objects are errors), required fields must be present with the right JSON
types (extra upstream keys such as MathQA ``annotated_formula`` or StrategyQA ``evidence`` are
allowed), and ids must be unique within a split. Errors are :class:`ValueError` whose message
starts with ``<path>:<line>:`` (1-based line) for files, or ``hub <repo> split '<split>' row
<index>:`` (0-based) for hub rows, then names the field and what is wrong. An empty split file is
an error too. A missing split file is :class:`FileNotFoundError` naming the path and the splits
that do exist in its folder.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import datasets

from meml.mathqa_options import LETTERS, format_options, parse_options
from meml.records import ANSWER_LINE, RECORD_FIELDS, SYNTHETIC_PREFIX, Record, task_of

__all__ = [
    "HUB_SOURCES",
    "HubSource",
    "load_benchmark",
    "load_records",
    "read_jsonl",
    "normalize_row",
    "normalize_gsm8k",
    "normalize_mathqa",
    "normalize_strategyqa",
    "split_gsm8k_answer",
    "records_to_dataset",
]


# --------------------------------------------------------------------------------------------
# Hub sources
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HubSource:
    """Where one benchmark lives on the Hugging Face hub.

    Attributes:
        path: hub repository id.
        config: configuration name (``None`` for the default one).
        revision: git revision (branch, tag or commit); ``None`` for ``main``.
        splits: accepted split names -> the hub split they load.
    """

    path: str
    config: str | None
    revision: str | None
    splits: dict[str, str]


HUB_SOURCES: dict[str, HubSource] = {
    # Parquet on main (config "main" = the original solutions; "socratic" is the other one).
    "gsm8k": HubSource("openai/gsm8k", "main", None, {"train": "train", "test": "test"}),
    # The canonical repository's main branch holds only the legacy loading script ``math_qa.py``
    # (it downloads MathQA.zip from math-qa.github.io), and ``datasets`` >= 4 refuses loading
    # scripts ("Dataset scripts are no longer supported"). The hub's automatic Parquet export of
    # that same repository, branch ``refs/convert/parquet`` (files
    # ``default/{train,validation,test}/0000.parquet`` written by the parquet-converter bot, split
    # names inferred from the directory names), serves the same rows with the original fields and
    # the official split sizes 29837 / 4475 / 2985. (lm-evaluation-harness instead switched its
    # ``mathqa`` task to the re-upload ``regisss/math_qa``; the export keeps us on the canonical
    # repository.) ``dev`` is accepted as an alias of ``validation``, like the local ``dev.jsonl``.
    "mathqa": HubSource(
        "allenai/math_qa",
        None,
        "refs/convert/parquet",
        {"train": "train", "validation": "validation", "dev": "validation", "test": "test"},
    ),
    # Parquet on main (README ``configs`` point at data/{train,test}-*.parquet). Its split is a
    # 70/30 split of the 2290 labelled official questions with the official qids; it differs from
    # the local train/dev files (another split, other qids: join on question text to compare).
    "strategyqa": HubSource("ChilleD/StrategyQA", None, None, {"train": "train", "test": "test"}),
}


# --------------------------------------------------------------------------------------------
# Field checks
# --------------------------------------------------------------------------------------------


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _field(row: dict, key: str, source: str) -> Any:
    if key not in row:
        raise ValueError(f"{source}: missing required field {key!r} (keys present: {sorted(row)})")
    return row[key]


def _str_field(row: dict, key: str, source: str, *, nonempty: bool = True) -> str:
    value = _field(row, key, source)
    if not isinstance(value, str):
        raise ValueError(f"{source}: field {key!r} must be a string, got {_json_type(value)} {value!r:.80}")
    if nonempty and not value.strip():
        raise ValueError(f"{source}: field {key!r} is empty")
    return value


def _bool_field(row: dict, key: str, source: str) -> bool:
    value = _field(row, key, source)
    if not isinstance(value, bool):
        raise ValueError(f"{source}: field {key!r} must be a boolean, got {_json_type(value)} {value!r:.80}")
    return value


def _str_list_field(row: dict, key: str, source: str) -> list[str]:
    value = _field(row, key, source)
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{source}: field {key!r} must be an array of strings, got {_json_type(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise ValueError(
                f"{source}: field {key!r} must be an array of strings, item {i} is {_json_type(item)} {item!r:.80}"
            )
    return list(value)


def _with_answer_line(body: str, answer: str) -> str:
    body = body.rstrip()
    return f"{body}\n{ANSWER_LINE}{answer}" if body else f"{ANSWER_LINE}{answer}"


# --------------------------------------------------------------------------------------------
# Per-benchmark normalization
# --------------------------------------------------------------------------------------------

_GSM8K_FINAL = re.compile(r"####[ \t]+(-?\d+(?:,\d{3})*(?:\.\d+)?)[ \t]*")


def split_gsm8k_answer(solution: str) -> tuple[str, str] | None:
    """Split a GSM8K solution into ``(body, number)``; ``None`` without a final ``#### <number>``.

    ``number`` has its thousands separators removed (``1,080`` -> ``1080``). Trailing whitespace
    after the final line is ignored.
    """
    text = solution.rstrip()
    body, _, last = text.rpartition("\n")
    match = _GSM8K_FINAL.fullmatch(last)
    if match is None:
        return None
    return body, match.group(1).replace(",", "")


def _row_id(dataset: str, split: str, index: int, row: dict, source: str, default: str | None = None) -> str:
    if dataset.startswith(SYNTHETIC_PREFIX) and "id" in row:
        return _str_field(row, "id", source)
    return default if default is not None else f"{dataset}-{split}-{index}"


def _meta(row: dict, source: str) -> tuple[str, str]:
    """``(slice, meta_json)`` from the optional ``meta`` object; ``("", "")`` without one."""
    if "meta" not in row:
        return "", ""
    meta = row["meta"]
    if not isinstance(meta, dict):
        raise ValueError(f"{source}: field 'meta' must be an object, got {_json_type(meta)} {meta!r:.80}")
    slice_ = meta.get("slice", "")
    if not isinstance(slice_, str):
        raise ValueError(f"{source}: field 'meta.slice' must be a string, got {_json_type(slice_)} {slice_!r:.80}")
    try:
        text = json.dumps(meta, sort_keys=True)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{source}: field 'meta' is not JSON-serializable: {err}") from err
    return slice_, text


def normalize_gsm8k(dataset: str, split: str, index: int, row: dict, source: str) -> Record:
    """One GSM8K-schema row (``question``, ``answer``) -> :class:`Record`."""
    question = _str_field(row, "question", source)
    solution = _str_field(row, "answer", source)
    parsed = split_gsm8k_answer(solution)
    if parsed is None:
        last = solution.rstrip().rpartition("\n")[2]
        raise ValueError(f"{source}: field 'answer' has no final '#### <number>' line (last line: {last!r:.80})")
    body, number = parsed
    slice_, meta = _meta(row, source)
    return Record(
        id=_row_id(dataset, split, index, row, source),
        task="gsm8k",
        dataset=dataset,
        split=split,
        question=question,
        answer=number,
        rationale=_with_answer_line(body, number),
        slice=slice_,
        meta=meta,
    )


def _strip_one_quote_pair(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        text = text[1:-1].strip()
    return text


def normalize_mathqa(dataset: str, split: str, index: int, row: dict, source: str) -> Record:
    """One MathQA-schema row (``Problem``, ``Rationale``, ``options``, ``correct``) -> :class:`Record`."""
    problem = _str_field(row, "Problem", source)
    rationale = _str_field(row, "Rationale", source, nonempty=False)
    options_raw = _str_field(row, "options", source)
    correct = _str_field(row, "correct", source)
    if correct not in LETTERS:
        raise ValueError(f"{source}: field 'correct' must be one of {', '.join(LETTERS)}, got {correct!r:.80}")
    try:
        options = format_options(parse_options(options_raw))
    except ValueError as err:
        raise ValueError(f"{source}: field 'options' does not parse into 5 options a-e: {err}") from err
    slice_, meta = _meta(row, source)
    return Record(
        id=_row_id(dataset, split, index, row, source),
        task="mathqa",
        dataset=dataset,
        split=split,
        question=f"{problem}\nOptions: {options}",
        answer=correct,
        rationale=_with_answer_line(_strip_one_quote_pair(rationale), correct),
        options=options,
        slice=slice_,
        meta=meta,
    )


def normalize_strategyqa(dataset: str, split: str, index: int, row: dict, source: str) -> Record:
    """One StrategyQA-schema row (``qid``, ``question``, ``answer`` bool, ``facts``) -> :class:`Record`."""
    qid = _str_field(row, "qid", source)
    question = _str_field(row, "question", source)
    answer = "yes" if _bool_field(row, "answer", source) else "no"
    facts = _str_list_field(row, "facts", source)
    slice_, meta = _meta(row, source)
    return Record(
        id=_row_id(dataset, split, index, row, source, default=qid),
        task="strategyqa",
        dataset=dataset,
        split=split,
        question=question,
        answer=answer,
        rationale=_with_answer_line(" ".join(f.strip() for f in facts if f.strip()), answer),
        slice=slice_,
        meta=meta,
    )


_NORMALIZERS: dict[str, Callable[[str, str, int, dict, str], Record]] = {
    "gsm8k": normalize_gsm8k,
    "mathqa": normalize_mathqa,
    "strategyqa": normalize_strategyqa,
}


def normalize_row(dataset_name: str, split: str, index: int, row: dict, source: str) -> Record:
    """Normalize one row in the original schema of ``task_of(dataset_name)`` into a :class:`Record`.

    Args:
        dataset_name: ``gsm8k``, ``mathqa``, ``strategyqa`` or a ``synth_`` variant.
        split: split name stored in the record (and used in index-based ids).
        index: 0-based row index within the split (index-based ids).
        row: the parsed JSON object.
        source: location prefix for error messages, e.g. ``path/to/train.jsonl:17``.

    Raises:
        ValueError: ``"<source>: field '<name>' ..."`` when the row does not fit the schema.
    """
    normalizer = _NORMALIZERS[task_of(dataset_name)]
    if not isinstance(row, dict):
        raise ValueError(f"{source}: row must be a JSON object, got {_json_type(row)}")
    return normalizer(dataset_name, split, index, row, source)


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def _read_jsonl_lines(path: Path) -> list[tuple[int, dict]]:
    rows: list[tuple[int, dict]] = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            text = line.rstrip("\r\n")
            if not text.strip():
                raise ValueError(f"{path}:{number}: blank line (every line must hold one JSON object)")
            try:
                value = json.loads(text)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{number}: invalid JSON: {err}") from err
            if not isinstance(value, dict):
                raise ValueError(f"{path}:{number}: line must be a JSON object, got {_json_type(value)}")
            rows.append((number, value))
    return rows


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Parse a JSON Lines file strictly: one JSON object per line, no blank lines.

    Raises:
        FileNotFoundError: when the file does not exist.
        ValueError: ``"<path>:<line>: ..."`` for a blank line, invalid JSON or a non-object.
    """
    return [row for _, row in _read_jsonl_lines(Path(path))]


_SPLIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


def _split_file(name: str, split: str, data_dir: str | os.PathLike) -> Path:
    if not _SPLIT_NAME.fullmatch(split):
        raise ValueError(f"invalid split name {split!r}: use letters, digits, '_', '-' and '.'")
    folder = Path(data_dir) / task_of(name)
    path = folder / f"{split}.jsonl"
    if not path.is_file():
        if folder.is_dir():
            found = sorted(p.stem for p in folder.glob("*.jsonl") if p.is_file())
            where = f"splits available in {folder}: {', '.join(found) if found else '(none)'}"
        else:
            where = f"folder {folder} does not exist"
        raise FileNotFoundError(f"no file for {name} split {split!r}: {path} does not exist; {where}")
    return path


def _check_unique(records: Iterable[tuple[str, Record]]) -> None:
    seen: dict[str, str] = {}
    for source, record in records:
        if record.id in seen:
            raise ValueError(f"{source}: duplicate id {record.id!r} (first at {seen[record.id]})")
        seen[record.id] = source


def _load_local(name: str, split: str, data_dir: str | os.PathLike) -> list[Record]:
    path = _split_file(name, split, data_dir)
    lines = _read_jsonl_lines(path)
    if not lines:
        raise ValueError(f"{path}: file holds no rows")
    located = []
    for index, (number, row) in enumerate(lines):
        source = f"{path}:{number}"
        located.append((source, normalize_row(name, split, index, row, source)))
    _check_unique(located)
    return [record for _, record in located]


def _load_hub(name: str, split: str) -> list[Record]:
    hub = HUB_SOURCES[name]
    if split not in hub.splits:
        raise ValueError(
            f"unknown split {split!r} for {name} on the hub ({hub.path}): expected one of {sorted(hub.splits)}"
        )
    hub_split = hub.splits[split]
    kwargs: dict[str, Any] = {"split": hub_split}
    if hub.revision is not None:
        kwargs["revision"] = hub.revision
    if hub.config is not None:
        dataset = datasets.load_dataset(hub.path, hub.config, **kwargs)
    else:
        dataset = datasets.load_dataset(hub.path, **kwargs)
    rows = dataset.to_list() if hasattr(dataset, "to_list") else list(dataset)
    if not rows:
        raise ValueError(f"hub {hub.path} split {hub_split!r}: no rows")
    located = []
    for index, row in enumerate(rows):
        source = f"hub {hub.path} split {hub_split!r} row {index}"
        located.append((source, normalize_row(name, split, index, row, source)))
    _check_unique(located)
    return [record for _, record in located]


def load_records(name: str, split: str, data_dir: str | os.PathLike | None = None) -> list[Record]:
    """Load one split of a benchmark as normalized :class:`Record` objects.

    Args:
        name: ``gsm8k``, ``mathqa``, ``strategyqa``, ``synth_gsm8k``, ``synth_mathqa`` or
            ``synth_strategyqa``.
        split: split name. Local files: any ``<split>.jsonl`` present in the benchmark's folder.
            Hub: GSM8K ``train``/``test``; MathQA ``train``/``validation`` (alias ``dev``)/``test``;
            StrategyQA ``train``/``test``.
        data_dir: folder holding ``gsm8k/``, ``mathqa/``, ``strategyqa/`` with JSON Lines files in
            the original schemas. ``None`` loads real benchmarks from the hub (:data:`HUB_SOURCES`);
            synthetic ones need it.

    Raises:
        ValueError: unknown name or split, synthetic name without ``data_dir``, or any malformed
            row (message names the file and 1-based line, or hub split and 0-based row).
        FileNotFoundError: the split's file is missing (message lists the splits present).
    """
    task_of(name)  # validates the name
    if data_dir is None:
        if name.startswith(SYNTHETIC_PREFIX):
            raise ValueError(
                f"synthetic dataset {name!r} needs data_dir: the folder the generator wrote "
                f"{task_of(name)}/<split>.jsonl into"
            )
        return _load_hub(name, split)
    return _load_local(name, split, data_dir)


_FEATURES = datasets.Features({field: datasets.Value("string") for field in RECORD_FIELDS})


def records_to_dataset(records: Iterable[Record]) -> datasets.Dataset:
    """A :class:`datasets.Dataset` with exactly the string columns :data:`RECORD_FIELDS`."""
    records = list(records)
    columns = {field: [getattr(r, field) for r in records] for field in RECORD_FIELDS}
    return datasets.Dataset.from_dict(columns, features=_FEATURES)


def load_benchmark(name: str, split: str, data_dir: str | os.PathLike | None = None) -> datasets.Dataset:
    """:func:`load_records` as a :class:`datasets.Dataset` of ``Record.to_dict()`` rows.

    Columns are exactly :data:`meml.records.RECORD_FIELDS`, all strings.
    """
    return records_to_dataset(load_records(name, split, data_dir))
