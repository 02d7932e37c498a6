"""The pipeline stages; each ``meml`` subcommand (and so each Snakemake rule) runs one of them.

Every stage takes the :class:`~meml.pipeline.settings.Settings` tree. A training stage keeps a finished
run whose recorded identity (:mod:`meml.pipeline.reads`: what it reads, plus its start model) is
unchanged, and writes a manifest (the rule's output) once every run of its job is there.
"""

from __future__ import annotations

import json
import logging
import random
import tempfile
from collections import defaultdict
from pathlib import Path

from meml import paths
from meml.methods import Method
from meml.pipeline import reads
from meml.pipeline.settings import Settings
from meml.provenance import provenance
from meml.records import Record
from meml.sweeps import meml_group, meml_methods, rl_methods

log = logging.getLogger(__name__)


def _root(settings: Settings) -> Path:
    return Path(settings.results_dir)


def _cap(records: list[Record], limit: int | None) -> list[Record]:
    return records if limit is None else records[:limit]


def _data_dir(settings: Settings, dataset: str) -> Path | None:
    if dataset.startswith("synth_"):
        return paths.world_dir(_root(settings))
    return Path(settings.data.data_dir) if settings.data.data_dir else None


def train_records(settings: Settings, dataset: str) -> list[Record]:
    from meml.data import load_records

    split = settings.data.train_split[dataset]
    return _cap(load_records(dataset, split, _data_dir(settings, dataset)), settings.data.max_train_items)


def rl_records(settings: Settings, dataset: str) -> list[Record]:
    """The RL question pool (the synthetic world keeps it apart from the SFT pool)."""
    from meml.data import load_records

    split = settings.data.rl_split[dataset]
    return _cap(load_records(dataset, split, _data_dir(settings, dataset)), settings.data.max_rl_items)


def dev_records(settings: Settings, dataset: str) -> list[Record]:
    """The development split of a synthetic dataset (the world check; never the tables)."""
    from meml.data import load_records

    if dataset not in settings.data.dev_split:
        raise ValueError(f"data.dev_split has no split for {dataset}")
    return load_records(dataset, settings.data.dev_split[dataset], _data_dir(settings, dataset))


def test_records(settings: Settings, dataset: str) -> list[Record]:
    from meml.data import load_records

    split = settings.data.test_split[dataset]
    return _cap(load_records(dataset, split, _data_dir(settings, dataset)), settings.data.max_test_items)


def base_model_path(settings: Settings, family: str) -> str:
    """The model every method starts from: a configured hub id or folder, else the tiny base."""
    pretrained = settings.models.pretrained.get(family)
    return pretrained if pretrained else str(paths.base_model_dir(_root(settings), family))


# --------------------------------------------------------------------------- world and experts


def make_world(settings: Settings) -> list[Path]:
    """Generate the synthetic benchmarks named in ``datasets``."""
    from meml.world.generate import write_world

    return write_world(paths.world_dir(_root(settings)), settings.world, settings.synthetic_tasks)


def make_experts(settings: Settings, dataset: str) -> dict:
    """Write every expert's trajectories for the training pool of ``dataset``; return per-expert accuracy."""
    from meml.experts.sources import make_source
    from meml.io import write_jsonl_atomic
    from meml.rewards import accuracy_reward

    records = train_records(settings, dataset)
    filter_incorrect = settings.experts.filter_incorrect
    report = {}
    for expert, spec in enumerate(settings.experts.sources):
        source = make_source(spec, seed=settings.world.seed * 1000 + expert,
                             cache=paths.teacher_file(_root(settings), dataset, expert), dataset=dataset,
                             expert=expert)
        rows, by_slice = [], defaultdict(list)
        for record, completion in zip(records, source.trajectories(records)):
            correct = None if completion is None else accuracy_reward(record.dataset, completion, record.answer,
                                                                     record.options or None)
            keep = completion is not None and (correct == 1.0 or not filter_incorrect)
            rows.append({"id": record.id, "expert": expert, "source": source.name,
                         "completion": completion if keep else None, "correct": correct})
            by_slice[record.slice or "all"].append(correct or 0.0)
        write_jsonl_atomic(paths.experts_file(_root(settings), dataset, expert), rows)
        report[expert] = {k: round(sum(v) / len(v), 3) for k, v in sorted(by_slice.items())}
        log.info("%s expert %d (%s): accuracy by slice %s", dataset, expert, source.name, report[expert])
    return report


def teacher_trajectories(settings: Settings, dataset: str, expert: int) -> dict:
    """Ask expert ``expert``'s teacher LLM (``experts.sources[expert]``, ``kind: openai`` or ``local``) every
    question of the training pool of ``dataset`` into ``paths.teacher_file``; resumes a killed run."""
    from meml.experts.teachers import TEACHER_KINDS, run_teacher

    sources = settings.experts.sources
    if not 0 <= expert < len(sources) or sources[expert]["kind"] not in TEACHER_KINDS:
        kinds = [s["kind"] for s in sources]
        raise ValueError(f"teacher: experts.sources[{expert}] is not a teacher LLM source ({TEACHER_KINDS}); "
                         f"the configured kinds are {kinds}")
    from meml.io import write_json_atomic

    cache = paths.teacher_file(_root(settings), dataset, expert)
    summary = run_teacher(sources[expert], train_records(settings, dataset), cache, expert,
                          where=f"experts.sources[{expert}]", seed=settings.world.seed * 1000 + expert,
                          rerun_hint=f"rerun `meml teacher --dataset {dataset} --expert {expert}`")
    write_json_atomic(paths.teacher_summary_file(_root(settings), dataset, expert),
                      {"dataset": dataset, "expert": expert, "source": sources[expert], "cache": cache.name,
                       **summary, **provenance(settings, settings.world.seed)})
    return summary


def read_trajectories(settings: Settings, dataset: str, records: list[Record]) -> list[list[str | None]]:
    """Per expert, the completion for each record (aligned with ``records``)."""
    from meml.data import read_jsonl

    out = []
    for expert in range(settings.n_experts):
        path = paths.experts_file(_root(settings), dataset, expert)
        by_id = {}
        for lineno, row in enumerate(read_jsonl(path), 1):
            if "id" not in row or "completion" not in row:
                raise ValueError(f"{path}:{lineno}: trajectory row needs 'id' and 'completion'")
            by_id[row["id"]] = row["completion"]
        missing = [r.id for r in records if r.id not in by_id]
        if missing:
            raise ValueError(f"{path}: no trajectory for {len(missing)} training item(s), e.g. {missing[:3]}; "
                             "rerun the experts stage")
        out.append([by_id[r.id] for r in records])
    return out


# --------------------------------------------------------------------------- tiny models


def _corpus(settings: Settings) -> list[str]:
    """Text the tiny tokenizer is trained on: questions and every expert style's answers."""
    from meml.experts.sources import ProgrammaticTeacher
    from meml.world.render import STYLES

    texts = list(settings.experts.prompts) * 200  # frequent enough for BPE to merge the prompts
    for dataset in settings.datasets:
        records = train_records(settings, dataset)
        texts += [r.question for r in records] + [r.rationale for r in records]
        if dataset.startswith("synth_"):
            for style in STYLES:
                texts += ProgrammaticTeacher(style=style).trajectories(records[:500])
    return texts


def build_tiny(settings: Settings, family: str) -> Path:
    """Train the tokenizer and save a randomly initialised tiny model of ``family``."""
    from meml.tiny import build_model, save_pretrained_folder, train_tokenizer

    tiny = settings.models.tiny_for(family)
    tokenizer = train_tokenizer(_corpus(settings), family, vocab_size=tiny.vocab_size)
    model = build_model(family, tokenizer, hidden_size=tiny.hidden_size, num_layers=tiny.num_layers,
                        num_heads=tiny.num_heads, num_kv_heads=tiny.num_kv_heads,
                        intermediate_size=tiny.intermediate_size,
                        max_position_embeddings=tiny.max_position_embeddings,
                        seed=settings.models.pretrain_for(family).seed)
    out = paths.init_model_dir(_root(settings), family)
    save_pretrained_folder(model, tokenizer, out)
    return out


def pretrain_answers(records: list[Record], seed: int) -> list[str]:
    """A correct answer per pretraining record, in a style drawn per record (every expert style equally often, no
    wrong procedure), so the base knows every style and no expert's is privileged."""
    from meml.experts.sources import ProgrammaticTeacher
    from meml.world.render import STYLES

    teachers = {style: ProgrammaticTeacher(style=style) for style in STYLES}
    styles = [STYLES[i % len(STYLES)] for i in range(len(records))]
    random.Random(f"pretrain-styles-{seed}").shuffle(styles)
    return [teachers[style].trajectory(record) for style, record in zip(styles, records)]


def pretrain(settings: Settings, family: str) -> dict:
    """Pretrain the tiny base model on the synthetic pretraining split, answered in every style (no system prompt)."""
    from meml.data import load_records
    from meml.training.sft import SFTConfig, conversations, train_sft
    from meml.world.drills import DRILL_PROMPT, drill_rows

    pretraining = settings.models.pretrain_for(family)
    rows = []
    for dataset in settings.datasets:
        if dataset.startswith("synth_"):
            records = load_records(dataset, "pretrain", paths.world_dir(_root(settings)))
            rows += conversations([r.question for r in records], pretrain_answers(records, pretraining.seed),
                                  system=None)
    if not rows:
        raise ValueError("pretrain: no synthetic dataset configured; set models.pretrained for real-data runs")
    drills = drill_rows(settings.world.difficulty, pretraining.drill_rows, pretraining.seed)
    rows += conversations([DRILL_PROMPT] * len(drills), drills, system=None)
    random.Random(pretraining.seed).shuffle(rows)
    fields = {k: getattr(pretraining, k) for k in SFTConfig.__dataclass_fields__}
    run = SFTConfig(**{**fields, "threads": settings.threads_per_job})
    return train_sft(paths.init_model_dir(_root(settings), family), rows, run,
                     paths.base_model_dir(_root(settings), family), provenance(settings, pretraining.seed))


# --------------------------------------------------------------------------- training stages


def _identity(out: Path, run_reads: dict, start_marker: Path | None, records: list[Record]) -> tuple[str, bool]:
    """A run's identity and whether ``out`` already holds a finished run with it (then it is kept)."""
    start = start_marker.read_text(encoding="utf-8") if start_marker is not None else ""
    identity = reads.run_identity(run_reads, start, [r.id for r in records])
    done = out / "run.json"
    if done.exists() and json.loads(done.read_text(encoding="utf-8")).get("identity") == identity:
        log.info("%s: already trained with these settings, kept", out)
        return identity, True
    return identity, False


def _start_marker(settings: Settings, family: str, dataset: str, method: Method) -> Path:
    start_model = paths.sft_dir(_root(settings), family, dataset, str(method.start))
    marker = start_model / "run.json"
    if not marker.exists():
        raise FileNotFoundError(f"{method}: start model {start_model} is missing; run the sft stage first")
    return marker


def sft(settings: Settings, family: str, dataset: str, methods: list[str] | None = None) -> Path:
    """Train the SFT methods (ExpertX-SFT, MoE-SFT) of one (family, dataset) with seed ``sft.seed``; write the
    job's manifest. Every seed of ``seeds`` starts its RL runs from these (the seeds are RL replicates)."""
    from baselines.sft import method_rows
    from meml.io import write_json_atomic
    from meml.training.sft import train_sft

    root = _root(settings)
    seed = settings.sft.seed
    records = train_records(settings, dataset)
    trajectories = read_trajectories(settings, dataset, records)
    questions = [r.question for r in records]
    base = base_model_path(settings, family)
    base_marker = Path(base) / "run.json"
    runs = {}
    for method in methods or settings.sft.methods:
        out = paths.sft_dir(root, family, dataset, method)
        run_reads = reads.sft_reads(settings, family, dataset, method)
        identity, done = _identity(out, run_reads, base_marker if base_marker.exists() else None, records)
        if not done:
            rows = method_rows(Method.parse(method), questions, trajectories, settings.experts.prompts)
            random.Random(seed).shuffle(rows)
            train_sft(base, rows, reads.sft_run(settings), out,
                      {"identity": identity, "method": method, "family": family, "dataset": dataset,
                       **provenance(settings, seed)}, compute=settings.compute)
        runs[method] = str(out)
    return write_json_atomic(paths.sft_manifest(root, family, dataset), {"runs": runs, **provenance(settings, seed)})


def rl(settings: Settings, family: str, dataset: str, seed: int, algorithm: str,
       methods: list[str] | None = None) -> Path:
    """Train the RL methods of one (family, dataset, seed, algorithm) and write the job's manifest.

    A run whose folder is complete and was trained from the same start model with the same
    settings is kept (a job interrupted after some of its runs does not repeat them); an
    interrupted run resumes from its last checkpoint.
    """
    from baselines.rl import build_trainer, rl_rows
    from meml.io import write_json_atomic
    from meml.training.rl import train_rl

    root = _root(settings)
    records = rl_records(settings, dataset)
    runs = {}
    for name in methods or rl_methods(settings, algorithm):
        method = Method.parse(name)
        if method.kind != "rl" or method.algorithm != algorithm:
            raise ValueError(f"rl: method {name} is not a {algorithm} method")
        marker = _start_marker(settings, family, dataset, method)
        out = paths.rl_dir(root, family, dataset, name, seed)
        identity, done = _identity(out, reads.rl_reads(settings, dataset, name, seed), marker, records)
        if not done:
            rows = rl_rows(records, method.experts(settings.n_experts), settings.experts.prompts)
            train_rl(marker.parent, rows, dataset, reads.rl_run(settings, name, seed), out,
                     paths.rl_work_dir(root, family, dataset, name, seed), build=build_trainer,
                     provenance={"identity": identity, "method": name, "family": family, "dataset": dataset,
                                 **provenance(settings, seed)}, compute=settings.compute)
        runs[name] = str(out)
    manifest = paths.rl_manifest(root, family, dataset, algorithm, seed)
    return write_json_atomic(manifest, {"algorithm": algorithm, "runs": runs, **provenance(settings, seed)})


def riel(settings: Settings, family: str, dataset: str, seed: int, methods: list[str] | None = None) -> list[Path]:
    """Train MEML-GRPO methods (Table 5 rows; default: every configured one) of one (family, dataset, seed) in
    this process and write one manifest per job group (:func:`meml.sweeps.meml_group`: a sweep point).

    A run already trained from the same start with the same settings is kept; an interrupted one resumes.
    """
    from dataclasses import asdict

    from meml.io import write_json_atomic
    from meml.method.trainer import meml_rows, trainer_builder
    from meml.training.rl import train_rl

    configured = meml_methods(settings)
    unknown = [m for m in methods or [] if m not in configured]
    if unknown:
        raise ValueError(f"riel: {', '.join(unknown)} not configured MEML-GRPO method(s) (meml.methods, with sweep "
                         "points)")
    root = _root(settings)
    records = rl_records(settings, dataset)
    runs: dict[str, dict[str, str]] = {}
    for method in methods or configured:
        parsed = Method.parse(method)
        meml, run = reads.meml_run(settings, method, seed)
        marker = _start_marker(settings, family, dataset, parsed)
        out = paths.rl_dir(root, family, dataset, method, seed)
        identity, done = _identity(out, reads.rl_reads(settings, dataset, method, seed), marker, records)
        if not done:
            train_rl(marker.parent, meml_rows(records), dataset, run, out,
                     paths.rl_work_dir(root, family, dataset, method, seed),
                     build=trainer_builder(meml, settings.experts.prompts),
                     provenance={"identity": identity, "method": method, "family": family, "dataset": dataset,
                                 **provenance(settings, seed)},
                     extra_settings={"meml": asdict(meml)}, compute=settings.compute)
        runs.setdefault(meml_group(settings, method), {})[method] = str(out)
    return [write_json_atomic(paths.meml_manifest(root, family, dataset, group, seed),
                              {"group": group, "runs": group_runs, **provenance(settings, seed)})
            for group, group_runs in runs.items()]


# --------------------------------------------------------------------------- evaluation


def evaluate(settings: Settings, family: str, dataset: str, seed: int | None = None,
             methods: list[str] | None = None) -> list[Path]:
    """Evaluate trained models of one (family, dataset, seed) under their inference expert prompts (default: the
    SFT methods, whose one evaluation every seed shares; ``seed`` is then ``sft.seed`` unless given)."""
    seed = settings.sft.seed if seed is None else seed
    from meml.evaluation import evaluate_model, write_result, write_task_docs
    from meml.records import task_of

    records = test_records(settings, dataset)
    prompts = settings.experts.prompts
    written = []
    with tempfile.TemporaryDirectory(prefix="meml-eval-") as tmp:
        docs = write_task_docs(records, Path(tmp) / f"{dataset}.jsonl")
        for method in methods or settings.sft.methods:
            model = paths.model_dir(_root(settings), family, dataset, method, seed)
            experts = Method.parse(method).experts(len(prompts))
            results = evaluate_model(model, docs, f"meml_{dataset}", {k: prompts[k] for k in experts},
                                     max_new_tokens=settings.eval.max_new_tokens, batch_size=settings.eval.batch_size,
                                     threads=settings.threads_per_job, compute=settings.compute,
                                     decoder=settings.eval.decoder)
            for expert, (summary, samples) in results.items():
                result = paths.eval_file(_root(settings), family, dataset, method, seed, expert)
                identity = {"family": family, "dataset": dataset, "task": task_of(dataset), "method": method,
                            "seed": seed, "expert": expert, "model": str(model)}
                write_result(result, paths.samples_file(result), summary, samples, identity,
                             provenance(settings, seed))
                written.append(result)
    return written


def slice_kind(method: str, expert: int, slice_: str, blind: dict[int, str | None], hard: tuple[str, ...]) -> str:
    """``all`` (the whole split), ``hard`` (no expert's trajectories solve it), ``own_blind`` (ExpertK-SFT under
    prompt K on expert K's blind slice) or ``other``."""
    if slice_ == "all":
        return "all"
    if slice_ in hard:
        return "hard"
    parsed = Method.parse(method)
    if parsed.kind == "sft" and parsed.expert == expert and blind.get(expert) == slice_:
        return "own_blind"
    return "other"


def _per_slice(answers: list[dict], solved: dict[str, float] | None, k: int):
    """``(slice, {"greedy", "pass<k>", "n"})`` for every slice of greedy ``answers`` and for ``all``; pass@k from
    ``solved`` (item id -> any of k samples right), None without samples."""
    for slice_ in sorted({s["slice"] for s in answers}) + ["all"]:
        ids = [s for s in answers if slice_ == "all" or s["slice"] == slice_]
        passk = None if solved is None else sum(solved[s["id"]] for s in ids) / len(ids)
        yield slice_, {"greedy": sum(s["correct"] for s in ids) / len(ids), f"pass{k}": passk, "n": len(ids)}


BASE_PROMPT = "none"
"""The world check's ``expert`` of the pretrained base, which answers with no system prompt."""


def cue_rule_accuracy(records: list[Record]) -> float | None:
    """StrategyQA: accuracy of the best rule that predicts yes/no from the slice cue and the comparator word alone
    (majority answer per (slice, comparator)); None for other tasks. Above 0.55 the world has a shortcut."""
    if not records or records[0].task != "strategyqa":
        return None
    votes: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for record in records:
        meta = json.loads(record.meta or "{}")
        votes[(meta.get("slice"), meta.get("comparator", "exactly"))][record.answer == "yes"] += 1
    return sum(max(v) for v in votes.values()) / len(records)


def world_check(settings: Settings, family: str, dataset: str) -> Path:
    """Greedy accuracy and pass@k of every SFT model under every expert prompt, per slice of the dev split.

    Written after SFT and before any RL (:func:`meml.paths.world_check_file`), so the world's design (each expert
    blind on its own slice, a hard slice nobody solves, experts of equal strength) can be read before an RL table;
    ``reports.world_check`` tabulates it with the acceptance lines. Sampling seed ``1000 * sft.seed + k`` for prompt k.
    The tiny pretrained base answers too, greedy with no system prompt (model ``base``, expert ``none``), and the
    file records the StrategyQA cue rule's accuracy (:func:`cue_rule_accuracy`).
    """
    from meml.evaluation import evaluate_model, evaluate_prompts, loaded_lm, sample_prompt, write_task_docs
    from meml.experts.sources import blind_slice
    from meml.io import write_json_atomic
    from meml.world.programs import HARD_SLICES

    check = settings.world_check
    records = _cap(dev_records(settings, dataset), check.max_items)
    if not records:
        raise ValueError(f"world_check: {dataset} has no dev items")
    prompts = dict(enumerate(settings.experts.prompts))
    blind = {k: blind_slice(s) for k, s in enumerate(settings.experts.sources)}
    root, seed, task = _root(settings), settings.sft.seed, f"meml_{dataset}_dev"
    common = {"max_new_tokens": settings.eval.max_new_tokens, "batch_size": settings.eval.batch_size,
              "threads": settings.threads_per_job, "compute": settings.compute, "decoder": settings.eval.decoder}
    rows = []
    with tempfile.TemporaryDirectory(prefix="meml-world-check-") as tmp:
        docs = write_task_docs(records, Path(tmp) / f"{dataset}.jsonl")
        for method in settings.sft.methods:
            model = paths.model_dir(root, family, dataset, method, seed)
            if not (model / "run.json").exists():
                raise FileNotFoundError(f"world_check: {method} model {model} is missing; run the sft stage first")
            with loaded_lm(model, settings.eval.batch_size, settings.compute, decoder=settings.eval.decoder,
                           threads=settings.threads_per_job) as lm:  # one load: greedy and sampled, every prompt
                greedy = evaluate_prompts(lm, docs, task, prompts, settings.eval.max_new_tokens)
                for expert, prompt in prompts.items():
                    sampled = sample_prompt(lm, docs, task, prompt, check.samples, check.temperature,
                                            settings.eval.max_new_tokens, seed=1000 * seed + expert)
                    solved = {r["id"]: float(any(r["correct"])) for r in sampled}
                    for slice_, figures in _per_slice(greedy[expert][1], solved, check.samples):
                        rows.append({"family": family, "dataset": dataset, "model": method, "expert": expert,
                                     "slice": slice_,
                                     "slice_kind": slice_kind(method, expert, slice_, blind, HARD_SLICES), **figures})
        base = base_model_path(settings, family)
        if settings.models.pretrained.get(family) is None:  # the tiny base, as pretrained: no system prompt
            answers = evaluate_model(base, docs, task, {BASE_PROMPT: None}, **common)[BASE_PROMPT][1]
            for slice_, figures in _per_slice(answers, None, check.samples):
                rows.append({"family": family, "dataset": dataset, "model": "base", "expert": BASE_PROMPT,
                             "slice": slice_, "slice_kind": "all" if slice_ == "all" else
                             "hard" if slice_ in HARD_SLICES else "other", **figures})
    out = paths.world_check_file(root, family, dataset)
    write_json_atomic(out, {"family": family, "dataset": dataset, "split": settings.data.dev_split[dataset],
                            "samples": check.samples, "temperature": check.temperature, "blind_slices": blind,
                            "hard_slices": list(HARD_SLICES), "rows": rows,
                            "shortcut": cue_rule_accuracy(records), **provenance(settings, seed)})
    log.info("world check %s %s: %d rows", family, dataset, len(rows))
    return out


def sample_experts(settings: Settings, family: str, dataset: str, seed: int | None = None) -> list[Path]:
    """Sample every compared expert's ExpertK-SFT model (error-complementarity analysis); return the files.

    Expert k's model answers the first ``complementarity.max_items`` test items under expert k's
    prompt, ``complementarity.samples`` times each at ``complementarity.temperature``. The sampling
    seed is ``1000 * seed + k``: a stream shared by all experts would correlate their draws and so
    their errors. ``seed`` defaults to ``sft.seed``: the ExpertK-SFT models are shared by every seed, so they are
    sampled once. Per expert: ``paths.sampled_file`` (one row per item) and a JSON summary beside it.
    """
    seed = settings.sft.seed if seed is None else seed
    from meml.evaluation import sample_model, write_task_docs
    from meml.io import write_json_atomic, write_jsonl_atomic
    from meml.records import task_of

    analysis = settings.complementarity
    records = _cap(test_records(settings, dataset), analysis.max_items)
    if not records:
        raise ValueError(f"sample: {dataset} has no test items")
    prompts = settings.experts.prompts
    root = _root(settings)
    written = []
    with tempfile.TemporaryDirectory(prefix="meml-sample-") as tmp:
        docs = write_task_docs(records, Path(tmp) / f"{dataset}.jsonl")
        for expert in settings.complementarity_experts():
            method = f"Expert{expert}-SFT"
            model = paths.model_dir(root, family, dataset, method, seed)
            if not (model / "run.json").exists():
                raise FileNotFoundError(f"sample: {method} model {model} is missing; run the sft stage first")
            rows = sample_model(model, docs, f"meml_{dataset}", prompts[expert], analysis.samples,
                                analysis.temperature, max_new_tokens=settings.eval.max_new_tokens,
                                batch_size=settings.eval.batch_size, threads=settings.threads_per_job,
                                seed=1000 * seed + expert, compute=settings.compute, decoder=settings.eval.decoder)
            out = paths.sampled_file(root, family, dataset, method, seed, expert)
            runs = [sum(1 - row["correct"][r] for row in rows) / len(rows) for r in range(analysis.samples)]
            summary = {"family": family, "dataset": dataset, "task": task_of(dataset), "method": method,
                       "expert": expert, "model": str(model), "system_prompt": prompts[expert],
                       "samples": analysis.samples, "temperature": analysis.temperature,
                       "max_items": analysis.max_items, "sampling_seed": 1000 * seed + expert, "n": len(rows),
                       "error_rate": sum(runs) / len(runs), "error_rate_by_run": runs,
                       "samples_file": out.name, **provenance(settings, seed)}
            write_jsonl_atomic(out, rows)
            write_json_atomic(paths.sampled_file(root, family, dataset, method, seed, expert, summary=True), summary)
            written.append(out)
            log.info("%s %s %s seed %d: error rate %.3f over %d runs of %d items", family, dataset, method, seed,
                     summary["error_rate"], analysis.samples, len(rows))
    return written
