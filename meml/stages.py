"""The pipeline stages; each ``meml`` subcommand (and so each Snakemake rule) runs one of them."""

from __future__ import annotations

import json
import logging
import random
import tempfile
from collections import defaultdict
from pathlib import Path

from meml import paths
from meml.provenance import provenance
from meml.records import Record

log = logging.getLogger(__name__)


def _root(config: dict) -> Path:
    return Path(config["results_dir"])


def _cap(records: list[Record], limit: int | None) -> list[Record]:
    return records if limit is None else records[:limit]


def _data_dir(config: dict, dataset: str) -> Path | None:
    if dataset.startswith("synth_"):
        return paths.world_dir(_root(config))
    return Path(config["data"]["data_dir"]) if config["data"]["data_dir"] else None


def train_records(config: dict, dataset: str) -> list[Record]:
    from meml.data import load_records

    split = config["data"]["train_split"][dataset]
    return _cap(load_records(dataset, split, _data_dir(config, dataset)), config["data"]["max_train_items"])


def rl_records(config: dict, dataset: str) -> list[Record]:
    """The RL question pool (the synthetic world keeps it apart from the SFT pool)."""
    from meml.data import load_records

    split = config["data"]["rl_split"][dataset]
    return _cap(load_records(dataset, split, _data_dir(config, dataset)), config["data"]["max_rl_items"])


def test_records(config: dict, dataset: str) -> list[Record]:
    from meml.data import load_records

    split = config["data"]["test_split"][dataset]
    return _cap(load_records(dataset, split, _data_dir(config, dataset)), config["data"]["max_test_items"])


def base_model_path(config: dict, family: str) -> str:
    """The model every method starts from: a configured hub id or folder, else the tiny base."""
    pretrained = config["models"]["pretrained"].get(family)
    return pretrained if pretrained else str(paths.base_model_dir(_root(config), family))


# --------------------------------------------------------------------------- world and experts


def make_world(config: dict) -> list[Path]:
    """Generate the synthetic benchmarks named in ``datasets``."""
    from meml.world.generate import WorldConfig, write_world

    tasks = [d[len("synth_"):] for d in config["datasets"] if d.startswith("synth_")]
    world = WorldConfig(seed=config["world"]["seed"], splits=dict(config["world"]["splits"]),
                        difficulty=dict(config["world"]["difficulty"]))
    return write_world(paths.world_dir(_root(config)), world, tasks)


def make_experts(config: dict, dataset: str) -> dict:
    """Write every expert's trajectories for the training pool of ``dataset``; return per-expert accuracy."""
    from meml.experts import make_source
    from meml.io import write_jsonl_atomic
    from meml.rewards import accuracy_reward

    records = train_records(config, dataset)
    filter_incorrect = config["experts"]["filter_incorrect"]
    report = {}
    for expert, spec in enumerate(config["experts"]["sources"]):
        source = make_source(spec, seed=config["world"]["seed"] * 1000 + expert,
                             cache=paths.teacher_file(_root(config), dataset, expert), dataset=dataset, expert=expert)
        rows, by_slice = [], defaultdict(list)
        for record, completion in zip(records, source.trajectories(records)):
            correct = None if completion is None else accuracy_reward(record.task, completion, record.answer,
                                                                     record.options or None)
            keep = completion is not None and (correct == 1.0 or not filter_incorrect)
            rows.append({"id": record.id, "expert": expert, "source": source.name,
                         "completion": completion if keep else None, "correct": correct})
            by_slice[record.slice or "all"].append(correct or 0.0)
        write_jsonl_atomic(paths.experts_file(_root(config), dataset, expert), rows)
        report[expert] = {k: round(sum(v) / len(v), 3) for k, v in sorted(by_slice.items())}
        log.info("%s expert %d (%s): accuracy by slice %s", dataset, expert, source.name, report[expert])
    return report


def teacher_trajectories(config: dict, dataset: str, expert: int) -> dict:
    """Ask expert ``expert``'s teacher LLM (``experts.sources[expert]``, ``kind: openai`` or ``local``) every
    question of the training pool of ``dataset`` into ``paths.teacher_file``; resumes a killed run."""
    from meml.teachers import TEACHER_KINDS, run_teacher

    sources = config["experts"]["sources"]
    if not 0 <= expert < len(sources) or sources[expert]["kind"] not in TEACHER_KINDS:
        kinds = [s["kind"] for s in sources]
        raise ValueError(f"teacher: experts.sources[{expert}] is not a teacher LLM source ({TEACHER_KINDS}); "
                         f"the configured kinds are {kinds}")
    from meml.io import write_json_atomic

    cache = paths.teacher_file(_root(config), dataset, expert)
    summary = run_teacher(sources[expert], train_records(config, dataset), cache, expert,
                          where=f"experts.sources[{expert}]", seed=config["world"]["seed"] * 1000 + expert,
                          rerun_hint=f"rerun `meml teacher --dataset {dataset} --expert {expert}`")
    write_json_atomic(paths.teacher_summary_file(_root(config), dataset, expert),
                      {"dataset": dataset, "expert": expert, "source": sources[expert], "cache": cache.name,
                       **summary, **provenance(config, config["world"]["seed"])})
    return summary


def read_trajectories(config: dict, dataset: str, records: list[Record]) -> list[list[str | None]]:
    """Per expert, the completion for each record (aligned with ``records``)."""
    from meml.data import read_jsonl

    out = []
    for expert in range(len(config["experts"]["prompts"])):
        path = paths.experts_file(_root(config), dataset, expert)
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


def _corpus(config: dict) -> list[str]:
    """Text the tiny tokenizer is trained on: questions and every expert style's answers."""
    from meml.experts import ProgrammaticTeacher
    from meml.world.render import STYLES

    texts = list(config["experts"]["prompts"]) * 200  # frequent enough for BPE to merge the prompts
    for dataset in config["datasets"]:
        records = train_records(config, dataset)
        texts += [r.question for r in records] + [r.rationale for r in records]
        if dataset.startswith("synth_"):
            for style in STYLES:
                texts += ProgrammaticTeacher(style=style).trajectories(records[:500])
    return texts


def build_tiny(config: dict, family: str) -> Path:
    """Train the tokenizer and save a randomly initialised tiny model of ``family``."""
    from meml.tiny import build_model, save_pretrained_folder, train_tokenizer

    tiny = config["models"]["tiny"]
    tokenizer = train_tokenizer(_corpus(config), family, vocab_size=tiny["vocab_size"])
    model = build_model(family, tokenizer, hidden_size=tiny["hidden_size"], num_layers=tiny["num_layers"],
                        num_heads=tiny["num_heads"], num_kv_heads=tiny["num_kv_heads"],
                        intermediate_size=tiny["intermediate_size"],
                        max_position_embeddings=tiny["max_position_embeddings"], seed=config["models"]["pretrain"]["seed"])
    out = paths.init_model_dir(_root(config), family)
    save_pretrained_folder(model, tokenizer, out)
    return out


def pretrain(config: dict, family: str) -> dict:
    """Pretrain the tiny base model on gold answers of the synthetic pretraining split (no system prompt)."""
    from baselines.sft import SFTRunConfig, conversations, train_sft
    from meml.data import load_records
    from meml.world.drills import DRILL_PROMPT, drill_rows
    from meml.world.programs import Difficulty

    settings = config["models"]["pretrain"]
    rows = []
    for dataset in config["datasets"]:
        if dataset.startswith("synth_"):
            records = load_records(dataset, "pretrain", paths.world_dir(_root(config)))
            rows += conversations([r.question for r in records], [r.rationale for r in records], system=None)
    if not rows:
        raise ValueError("pretrain: no synthetic dataset configured; set models.pretrained for real-data runs")
    drills = drill_rows(Difficulty(**config["world"]["difficulty"]), settings["drill_rows"], settings["seed"])
    rows += conversations([DRILL_PROMPT] * len(drills), drills, system=None)
    random.Random(settings["seed"]).shuffle(rows)
    run = SFTRunConfig(steps=settings["steps"], batch_size=settings["batch_size"],
                       learning_rate=settings["learning_rate"], warmup_ratio=settings["warmup_ratio"],
                       max_length=settings["max_length"], seed=settings["seed"], threads=config["threads_per_job"],
                       assistant_only_loss=True, lr_scheduler_type="cosine")
    return train_sft(paths.init_model_dir(_root(config), family), rows, run,
                     paths.base_model_dir(_root(config), family), provenance(config, settings["seed"]))


# --------------------------------------------------------------------------- SFT and evaluation


def sft(config: dict, family: str, dataset: str, seed: int, methods: list[str] | None = None) -> dict:
    """Train the SFT methods (ExpertX-SFT, MoE-SFT) of one (family, dataset, seed)."""
    from baselines.sft import SFTRunConfig, method_rows, train_sft
    from meml.compute import ComputeConfig

    records = train_records(config, dataset)
    trajectories = read_trajectories(config, dataset, records)
    questions = [r.question for r in records]
    settings = config["sft"]
    out = {}
    for method in methods or settings["methods"]:
        rows = method_rows(method, questions, trajectories, config["experts"]["prompts"])
        random.Random(seed).shuffle(rows)
        run = SFTRunConfig(steps=settings["steps"], batch_size=settings["batch_size"],
                           learning_rate=settings["learning_rate"], lr_scheduler_type=settings["lr_scheduler_type"],
                           warmup_ratio=settings["warmup_ratio"], max_length=settings["max_length"],
                           assistant_only_loss=settings["assistant_only_loss"],
                           answer_mask=settings.get("answer_mask", "chat_template"),
                           gradient_accumulation_steps=settings.get("gradient_accumulation_steps", 1),
                           num_train_epochs=settings.get("epochs"), seed=seed, threads=config["threads_per_job"])
        out[method] = train_sft(base_model_path(config, family), rows, run,
                                paths.sft_dir(_root(config), family, dataset, method, seed),
                                {"method": method, "family": family, "dataset": dataset, **provenance(config, seed)},
                                compute=ComputeConfig.from_config(config))
    return out


def _already_trained(out: Path, identity: str) -> bool:
    """Whether ``out`` holds a finished run with this identity (same settings and start model)."""
    done = out / "run.json"
    if done.exists() and json.loads(done.read_text(encoding="utf-8")).get("identity") == identity:
        log.info("%s: already trained with these settings, kept", out)
        return True
    return False


def rl_methods(config: dict, algorithm: str) -> list[str]:
    """The configured RL methods of one algorithm, e.g. ``[Expert0-SFT-GRPO, ..., MoE-SFT-GRPO]``, each once
    per sweep point when options of it are swept (:func:`meml.sweeps.expand_methods`)."""
    from meml.sweeps import expand_methods

    return expand_methods(config, [m for m in config["rl"]["methods"] if paths.rl_algorithm(m) == algorithm])


def meml_methods(config: dict) -> list[str]:
    """The configured MEML-GRPO methods, each once per sweep point of its swept options."""
    from meml.sweeps import expand_methods

    return expand_methods(config, config["meml"]["methods"])


def rl(config: dict, family: str, dataset: str, seed: int, algorithm: str, methods: list[str] | None = None) -> Path:
    """Train the RL methods of one (family, dataset, seed, algorithm) and write the job's manifest.

    A run whose folder is complete and was trained from the same start model with the same
    settings is kept (a job interrupted after some of its runs does not repeat them); an
    interrupted run resumes from its last checkpoint.
    """
    from baselines.rl import rl_rows, split_method, start_experts, train_rl
    from baselines.rl_config import RLRunConfig
    from meml.compute import ComputeConfig
    from meml.config import config_digest
    from meml.io import write_json_atomic
    from meml.records import task_of

    from meml.sweeps import apply_point

    root = _root(config)
    records = rl_records(config, dataset)
    prompts = config["experts"]["prompts"]
    runs = {}
    for method in methods or rl_methods(config, algorithm):
        settings = apply_point(config, method)["rl"]
        run = RLRunConfig.for_algorithm(algorithm, settings).with_seed(seed, config["threads_per_job"])
        start, method_algorithm = split_method(method)
        if method_algorithm != algorithm:
            raise ValueError(f"rl: method {method} is not a {algorithm} method")
        start_model = paths.sft_dir(root, family, dataset, start, seed)
        start_marker = start_model / "run.json"
        if not start_marker.exists():
            raise FileNotFoundError(f"{method}: start model {start_model} is missing; run the sft stage first")
        identity = config_digest(method, run.__dict__, start_marker.read_text(encoding="utf-8"),
                                 [r.id for r in records])
        out = paths.rl_dir(root, family, dataset, method, seed)
        if not _already_trained(out, identity):
            rows = rl_rows(records, start_experts(start, len(prompts)), prompts)
            train_rl(start_model, rows, task_of(dataset), run, out,
                     paths.rl_work_dir(root, family, dataset, method, seed),
                     {"identity": identity, "method": method, "family": family, "dataset": dataset,
                      **provenance(config, seed)}, compute=ComputeConfig.from_config(config))
        runs[method] = str(out)
    manifest = paths.rl_manifest(root, family, dataset, algorithm, seed)
    return write_json_atomic(manifest, {"algorithm": algorithm, "runs": runs, **provenance(config, seed)})


def riel(config: dict, family: str, dataset: str, seed: int, method: str) -> Path:
    """Train one MEML-GRPO method (a Table 5 row) of one (family, dataset, seed); return its folder.

    Kept when already trained from the same start with the same settings; resumes after a crash.
    """
    from dataclasses import asdict

    from baselines.rl import train_rl
    from baselines.rl_config import RLRunConfig
    from meml.compute import ComputeConfig
    from meml.config import config_digest
    from meml.records import task_of
    from meml.riel_config import MEMLConfig
    from meml.sweeps import apply_point
    from meml.trainer import meml_rows, trainer_builder

    if method not in meml_methods(config):
        raise ValueError(f"riel: {method} is not a configured MEML-GRPO method (meml.methods, with sweep points)")
    config = apply_point(config, method)
    root = _root(config)
    prompts = config["experts"]["prompts"]
    settings = MEMLConfig.for_method(method, config["meml"])
    run = settings.grpo_run(RLRunConfig.for_algorithm("GRPO", config["rl"]).with_seed(seed, config["threads_per_job"]),
                            len(prompts))
    records = rl_records(config, dataset)
    start_model = paths.sft_dir(root, family, dataset, paths.meml_variant(method).start, seed)
    start_marker = start_model / "run.json"
    if not start_marker.exists():
        raise FileNotFoundError(f"{method}: start model {start_model} is missing; run the sft stage first")
    experts = settings.experts(len(prompts))
    identity = config_digest(method, run.__dict__, asdict(settings), [prompts[e] for e in experts],
                             start_marker.read_text(encoding="utf-8"), [r.id for r in records])
    out = paths.rl_dir(root, family, dataset, method, seed)
    if _already_trained(out, identity):
        return out
    train_rl(start_model, meml_rows(records), task_of(dataset), run, out,
             paths.rl_work_dir(root, family, dataset, method, seed),
             {"identity": identity, "method": method, "family": family, "dataset": dataset,
              **provenance(config, seed)},
             build=trainer_builder(settings, prompts), extra_settings={"meml": asdict(settings)},
             compute=ComputeConfig.from_config(config))
    return out


def evaluate(config: dict, family: str, dataset: str, seed: int, methods: list[str] | None = None) -> list[Path]:
    """Evaluate trained models (SFT or RL) of one (family, dataset, seed) under their inference expert prompts."""
    from meml.compute import ComputeConfig
    from meml.evaluation import evaluate_model, write_result, write_task_docs
    from meml.records import task_of

    records = test_records(config, dataset)
    prompts = config["experts"]["prompts"]
    written = []
    with tempfile.TemporaryDirectory(prefix="meml-eval-") as tmp:
        docs = write_task_docs(records, Path(tmp) / f"{dataset}.jsonl")
        for method in methods or config["sft"]["methods"]:
            model = paths.model_dir(_root(config), family, dataset, method, seed)
            experts = paths.method_experts(method, len(prompts))
            results = evaluate_model(model, docs, f"meml_{dataset}", {k: prompts[k] for k in experts},
                                     max_new_tokens=config["eval"]["max_new_tokens"],
                                     batch_size=config["eval"]["batch_size"], threads=config["threads_per_job"],
                                     compute=ComputeConfig.from_config(config))
            for expert, (summary, samples) in results.items():
                result = paths.eval_file(_root(config), family, dataset, method, seed, expert)
                identity = {"family": family, "dataset": dataset, "task": task_of(dataset), "method": method,
                            "seed": seed, "expert": expert, "model": str(model)}
                write_result(result, paths.samples_file(result), summary, samples, identity, provenance(config, seed))
                written.append(result)
    return written


def sample_experts(config: dict, family: str, dataset: str, seed: int) -> list[Path]:
    """Sample every compared expert's ExpertK-SFT model (error-complementarity analysis); return the files.

    Expert k's model answers the first ``complementarity.max_items`` test items under expert k's
    prompt, ``complementarity.samples`` times each at ``complementarity.temperature``. The sampling
    seed is ``1000 * seed + k``: a stream shared by all experts would correlate their draws and so
    their errors. Per expert: ``paths.sampled_file`` (one row per item) and a JSON summary beside it.
    """
    from meml.compute import ComputeConfig
    from meml.config import complementarity_experts
    from meml.evaluation import sample_model, write_task_docs
    from meml.io import write_json_atomic, write_jsonl_atomic
    from meml.records import task_of

    settings = config["complementarity"]
    records = _cap(test_records(config, dataset), settings["max_items"])
    if not records:
        raise ValueError(f"sample: {dataset} has no test items")
    prompts = config["experts"]["prompts"]
    root = _root(config)
    written = []
    with tempfile.TemporaryDirectory(prefix="meml-sample-") as tmp:
        docs = write_task_docs(records, Path(tmp) / f"{dataset}.jsonl")
        for expert in complementarity_experts(config):
            method = f"Expert{expert}-SFT"
            model = paths.model_dir(root, family, dataset, method, seed)
            if not (model / "run.json").exists():
                raise FileNotFoundError(f"sample: {method} model {model} is missing; run the sft stage first")
            rows = sample_model(model, docs, f"meml_{dataset}", prompts[expert], settings["samples"],
                                settings["temperature"], max_new_tokens=config["eval"]["max_new_tokens"],
                                batch_size=config["eval"]["batch_size"], threads=config["threads_per_job"],
                                seed=1000 * seed + expert, compute=ComputeConfig.from_config(config))
            out = paths.sampled_file(root, family, dataset, method, seed, expert)
            runs = [sum(1 - row["correct"][r] for row in rows) / len(rows) for r in range(settings["samples"])]
            summary = {"family": family, "dataset": dataset, "task": task_of(dataset), "method": method,
                       "expert": expert, "model": str(model), "system_prompt": prompts[expert],
                       "samples": settings["samples"], "temperature": settings["temperature"],
                       "max_items": settings["max_items"], "sampling_seed": 1000 * seed + expert, "n": len(rows),
                       "error_rate": sum(runs) / len(runs), "error_rate_by_run": runs,
                       "samples_file": out.name, **provenance(config, seed)}
            write_jsonl_atomic(out, rows)
            write_json_atomic(paths.sampled_file(root, family, dataset, method, seed, expert, summary=True), summary)
            written.append(out)
            log.info("%s %s %s seed %d: error rate %.3f over %d runs of %d items", family, dataset, method, seed,
                     summary["error_rate"], settings["samples"], len(rows))
    return written
