"""The workflow's settings: one typed tree, built once from YAML, with every default in one place.

Each section is a dataclass in TRL's style (help text per field, checks in ``__post_init__``); the
run-level ones live beside the code that uses them (:class:`~meml.training.rl_config.RLConfig`,
:class:`~meml.training.sft.SFTConfig`, :class:`~meml.method.config.MEMLConfig`,
:class:`~meml.training.compute.ComputeConfig`, :class:`~meml.world.generate.WorldConfig`), and the
workflow sections below add their method lists. A YAML config lists only what differs from these
defaults (the defaults are the tiny offline setting). Checks that span sections are in
:meth:`Settings.__post_init__`. ``workflow/schemas/config.schema.yaml`` is generated from the tree
(:func:`write_schema`, ``meml schema``); a test checks the committed file matches.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from meml.experts.spec import ExpertSource
from meml.fields import (
    ConfigError,
    check_mapping,
    from_mapping,
    json_schema,
    setting,
    to_mapping,
)
from meml.method.config import MEMLConfig
from meml.methods import (
    MEML_PATTERN,
    RL_ALGORITHMS,
    RL_PATTERN,
    SFT_METHODS,
    SFT_PATTERN,
    Method,
)
from meml.tiny.config import TinyModelConfig
from meml.training.compute import ComputeConfig
from meml.training.rl_config import RLConfig
from meml.training.sft import SFTConfig
from meml.world.generate import WorldConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"
DEFAULT_CONFIG = REPO_ROOT / "workflow" / "config" / "default.yaml"

Dataset = Literal["gsm8k", "mathqa", "strategyqa", "synth_gsm8k", "synth_mathqa", "synth_strategyqa"]
SYNTH = ("synth_gsm8k", "synth_mathqa", "synth_strategyqa")

__all__ = ["ConfigError", "Settings", "load_settings", "settings_from_config"]


def _splits(synth: str, gsm8k: str, mathqa: str, strategyqa: str) -> dict[str, str]:
    return {**{d: synth for d in SYNTH}, "gsm8k": gsm8k, "mathqa": mathqa, "strategyqa": strategyqa}


@dataclass
class DataSettings:
    """Which split of each dataset each stage reads, and caps on their sizes."""

    data_dir: str | None = setting("A folder of <dataset>/<split>.jsonl in the original schemas; null: the hub "
                                   "(synthetic datasets are always made by the workflow).", None)
    train_split: dict[str, str] = setting("SFT pool per dataset.", factory=lambda: _splits("train", "train", "dev",
                                                                                           "train"))
    test_split: dict[str, str] = setting("Test set per dataset (read only by evaluation and the tables).",
                                         factory=lambda: _splits("test", "test", "test", "dev"))
    rl_split: dict[str, str] = setting("RL question pool per dataset.",
                                       factory=lambda: _splits("rl", "train", "dev", "train"))
    dev_split: dict[str, str] = setting(
        "Development set per synthetic dataset: the world check (results/tables/world_check) and hyperparameter "
        "choices read it, the tables never do.", factory=lambda: {d: "dev" for d in SYNTH})
    max_train_items: int | None = setting("Cap on the SFT pool per dataset (null: all).", None, ge=1)
    max_test_items: int | None = setting("Cap on the test set (null: all).", None, ge=1)
    max_rl_items: int | None = setting("Cap on the RL question pool (null: all).", None, ge=1)


def _default_prompts() -> list[str]:
    return [f"You are Expert {k}. Solve step by step." for k in range(3)]


def _default_sources() -> list[dict]:
    return [{"kind": "programmatic", "style": "gold", "flaw": "triple_as_double", "error_rate": 1.0},
            {"kind": "programmatic", "style": "terse", "flaw": "sub_as_add", "error_rate": 1.0},
            {"kind": "programmatic", "style": "verify", "flaw": "double_as_plus2", "error_rate": 1.0}]


@dataclass
class ExpertsSettings:
    """The experts: one system prompt and one trajectory source each."""

    prompts: list[str] = setting("One system prompt per expert.", factory=_default_prompts, min_items=1)
    sources: list[dict] = setting("One trajectory source per expert prompt.", factory=_default_sources,
                                  items=ExpertSource)
    filter_incorrect: bool = setting("Drop trajectories whose final answer is wrong (the paper's likely reading for "
                                     "LLM teachers; see docs/method.md).", False)

    def __post_init__(self):
        if len(set(self.prompts)) != len(self.prompts) or not all(self.prompts):
            raise ValueError("experts.prompts: every prompt must be non-empty and different from the others")
        for i, spec in enumerate(self.sources):
            check_mapping(ExpertSource, spec, f"experts.sources[{i}]")
            if "kind" not in spec:
                raise ValueError(f"experts.sources[{i}]: needs 'kind'")
            if spec["kind"] == "programmatic" and "style" not in spec:
                raise ValueError(f"experts.sources[{i}]: a programmatic source needs 'style'")
            if spec["kind"] in ("openai", "local"):
                from meml.experts.teachers import spec_problem

                problem = spec_problem(spec)  # openai: base_url and model; local: model; keys of the kind
                if problem:
                    raise ValueError(f"experts.sources[{i}]: {problem}")
        if len(self.sources) != len(self.prompts):
            raise ValueError(f"experts.sources has {len(self.sources)} entries but experts.prompts has "
                             f"{len(self.prompts)}: give one source per expert prompt")


@dataclass
class PretrainSettings(SFTConfig):
    """Pretraining of the tiny base models (no system prompt; the tiny setting only) on the pretraining split, each
    item answered correctly in one of the expert styles (meml.world.render.STYLES), so that no style is privileged."""

    steps: int = setting("Optimizer steps.", 1200, ge=1)
    batch_size: int = setting("Rows per optimizer step.", 32, ge=1)
    learning_rate: float = setting("Peak learning rate (AdamW, cosine schedule).", 3e-3, gt=0)
    seed: int = setting("Seed of the pretraining data order and initialisation.", 0, ge=0)
    drill_rows: int = setting("Arithmetic and comparison drill rows mixed into pretraining (meml/world/drills.py).",
                              1000, ge=0)


@dataclass
class ModelsSettings:
    """The base models: a hub id or folder per family, or a tiny model built and pretrained here."""

    families: list[Literal["qwen2", "llama"]] = setting("Model families (Table 4's two blocks).",
                                                        factory=lambda: ["qwen2", "llama"], min_items=1)
    pretrained: dict[str, str | None] = setting("Hub id or folder per family; null: build and pretrain a tiny one.",
                                                factory=lambda: {"qwen2": None, "llama": None})
    tiny: TinyModelConfig = setting("Shape of the tiny models.", factory=TinyModelConfig)
    pretrain: PretrainSettings = setting("Pretraining of the tiny models.", factory=PretrainSettings)
    by_family: dict[str, dict] = setting(
        "Per-family changes to `tiny` and `pretrain`: the default pretrains the tiny Llama for 5/6 of Qwen's "
        "steps, a weaker second base as the paper's Llama-3.2-1B against Qwen2.5-Math-1.5B (e.g. {llama: {tiny: "
        "{hidden_size: 64}}} for a smaller one instead).", factory=lambda: {"llama": {"pretrain": {"steps": 1000}}})

    def __post_init__(self):
        if len(set(self.families)) != len(self.families):
            raise ValueError(f"models.families: repeated family in {self.families}")
        unknown = sorted(set(self.pretrained) - {"qwen2", "llama"})
        if unknown:
            raise ValueError(f"models.pretrained: unknown family(ies) {unknown}")
        unknown = sorted(set(self.by_family) - {"qwen2", "llama"})
        if unknown:
            raise ValueError(f"models.by_family: unknown family(ies) {unknown}")
        for family, changes in self.by_family.items():
            sections = sorted(set(changes or {}) - {"tiny", "pretrain"})
            if sections:
                raise ValueError(f"models.by_family.{family}: only tiny and pretrain can change, not {sections}")
            self.tiny_for(family), self.pretrain_for(family)  # every key and value checked here

    def _for(self, family: str, section: str):
        base = getattr(self, section)
        changes = (self.by_family.get(family) or {}).get(section) or {}
        return from_mapping(type(base), {**to_mapping(base), **changes}, f"models.by_family.{family}.{section}")

    def tiny_for(self, family: str) -> TinyModelConfig:
        """The tiny model shape of ``family``: ``tiny`` with its ``by_family`` changes."""
        return self._for(family, "tiny")

    def pretrain_for(self, family: str) -> PretrainSettings:
        """The pretraining of ``family``'s tiny model: ``pretrain`` with its ``by_family`` changes."""
        return self._for(family, "pretrain")


@dataclass
class SFTSettings(SFTConfig):
    """The SFT methods (Table 4's SFT rows, and the starts of every RL method)."""

    methods: list[str] = setting("Expert<k>-SFT and MoE-SFT methods.", factory=lambda: list(SFT_METHODS),
                                 min_items=1, pattern=SFT_PATTERN)
    seed: int = setting("Seed of the SFT runs. One SFT per (family, dataset) is shared by every seed of `seeds`, "
                        "which are RL replicates (as the pretrained base is shared); the SFT rows of the tables are "
                        "that one run, and their intervals cover the RL stage only.", 0, ge=0)

    def __post_init__(self):
        super().__post_init__()
        _check_methods(self.methods, "sft.methods", "sft")


@dataclass
class RLSettings(RLConfig):
    """The RL baselines: methods <start>-<algorithm>, each algorithm with its published settings underneath the
    common keys, and ``algorithms.<name>`` overriding any key for one algorithm."""

    methods: list[str] = setting(
        "RL methods <SFT method>-<GRPO|Dr.GRPO|DAPO>; one job per (family, dataset, seed, algorithm).",
        factory=lambda: ["Expert1-SFT-GRPO", "Expert1-SFT-Dr.GRPO", "MoE-SFT-GRPO", "MoE-SFT-Dr.GRPO", "MoE-SFT-DAPO"],
        pattern=RL_PATTERN)
    algorithms: dict[str, dict] = setting("Per-algorithm overrides of the keys above, e.g. {DAPO: "
                                          "{max_sampling_rounds: 3}}.", factory=dict)

    def __post_init__(self):
        super().__post_init__()
        _check_methods(self.methods, "rl.methods", "rl")
        for algorithm, overrides in self.algorithms.items():
            if algorithm not in RL_ALGORITHMS:
                raise ValueError(f"rl.algorithms: unknown algorithm {algorithm!r}; expected one of {RL_ALGORITHMS}")
            check_mapping(RLConfig, overrides or {}, f"rl.algorithms.{algorithm}")
        for algorithm in RL_ALGORITHMS:
            self.run(algorithm)

    def run(self, algorithm: str, seed: int = 0, threads: int = 1) -> RLConfig:
        """The resolved settings of one ``algorithm`` run: presets, common keys, then its overrides."""
        try:
            return self.for_algorithm(algorithm, **(self.algorithms.get(algorithm) or {})).with_seed(seed, threads)
        except ValueError as err:
            raise ValueError(f"rl.algorithms.{algorithm}: {err}" if algorithm in self.algorithms else str(err)) from err


@dataclass
class MEMLSettings(MEMLConfig):
    """MEML-GRPO runs (Table 5's rows) on the GRPO settings of ``rl``."""

    methods: list[str] = setting(
        "MEML-GRPO[-Expert<k>][-noHSFT][-noIML] methods; each is one row of Table 5.",
        factory=lambda: ["MEML-GRPO", "MEML-GRPO-noIML", "MEML-GRPO-noHSFT", "MEML-GRPO-noHSFT-noIML",
                         "MEML-GRPO-Expert1-noHSFT-noIML"], pattern=MEML_PATTERN)
    report_expert: int = setting("Inference expert of Table 5 (the paper reports Expert1).", 1, ge=0)

    def __post_init__(self):
        super().__post_init__()
        _check_methods(self.methods, "meml.methods", "meml")


@dataclass
class EvalSettings:
    """Evaluation through lm-eval (greedy decoding)."""

    max_new_tokens: int = setting("Longest answer generated.", 128, ge=1)
    batch_size: int = setting("Questions per generation batch (HF backend).", 150, ge=1)
    decoder: Literal["auto", "fast", "hf"] = setting(
        "Generation of the HF backend (evaluation and complementarity sampling): 'fast' runs meml.tiny.decoder "
        "inside lm-eval's HFLM (greedy equal to transformers' greedy; sampling from the same distribution, another "
        "random stream), 'hf' transformers' generate, 'auto' 'fast' for a model the decoder supports on the CPU.", "auto")


@dataclass
class ReportsSettings:
    """How the tables compare methods (reports/table4.py, reports/stats.py; docs/method.md)."""

    strongest_baseline: Literal["any", "same_expert", "rl"] = setting(
        "Table 4's significance mark compares MEML-GRPO at meml.report_expert with the best non-MEML row: any (SFT "
        "or RL, any inference expert), same_expert (rows evaluated under the report expert), rl (RL baselines only, "
        "any expert).", "any")
    bootstrap_iterations: int = setting("Paired bootstrap draws.", 2000, ge=1)


@dataclass
class ComplementaritySettings:
    """Error-complementarity analysis: every compared expert's ExpertK-SFT model sampled several times per test
    item under expert K's prompt; decoding length and batch size come from eval."""

    samples: int = setting("Sampled runs per expert SFT model (the paper: 8); runs are paired by index across "
                           "experts.", 8, ge=1)
    temperature: float = setting("Sampling temperature (no top-k/top-p truncation).", 1.0, gt=0)
    max_items: int | None = setting("First N test items in file order (after data.max_test_items); null: the whole "
                                    "test set.", 100, ge=1)
    experts: list[int] | None = setting(
        "Expert indices to compare, each needing Expert<k>-SFT in sft.methods; null: every expert with an "
        "Expert<k>-SFT method in sft.methods.", None, ge=0, min_items=1)


@dataclass
class WorldCheckSettings:
    """The world check: every SFT model under every expert prompt on the dev split of each synthetic dataset, per
    slice, before any RL (results/tables/world_check.{md,csv}; meml/pipeline/stages.py world_check)."""

    samples: int = setting("Sampled answers per item for pass@k (k = samples; the issue's acceptance lines: 8).", 8,
                           ge=1)
    temperature: float = setting("Sampling temperature of the pass@k samples (no top-k/top-p truncation).", 1.0, gt=0)
    max_items: int | None = setting("First N dev items in file order; null: the whole dev split.", None, ge=1)


def _check_methods(names: list[str], where: str, kind: str) -> None:
    if len(set(names)) != len(names):
        raise ValueError(f"{where}: repeated method in {names}")
    for name in names:
        try:
            method = Method.parse(name)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from err
        if method.kind != kind or method.tags or str(method) != name:
            raise ValueError(f"{where}: {name!r} is not a {kind} method name")


_setting = setting  # the Settings class has a field named "setting"


@dataclass
class Settings:
    """MEML-GRPO workflow configuration."""

    setting: Literal["tiny", "paper"] = _setting("tiny offline world or the paper setting.", "tiny")
    results_dir: str = _setting("Where every output is written.", "results")
    seeds: list[int] = _setting("Seeds (tables: mean and 95% interval over seeds).", factory=lambda: [0, 1, 2],
                               ge=0, min_items=1)
    threads_per_job: int = _setting("torch threads per job; snakemake --cores N runs N/threads jobs at once.", 1,
                                   ge=1)
    datasets: list[Dataset] = _setting("synth_* are made by the world below; gsm8k, mathqa, strategyqa are the real "
                                      "benchmarks.", factory=lambda: list(SYNTH), min_items=1)
    data: DataSettings = _setting("Splits and caps.", factory=DataSettings)
    world: WorldConfig = _setting("The synthetic world.", factory=WorldConfig)
    experts: ExpertsSettings = _setting("Expert prompts and trajectory sources.", factory=ExpertsSettings)
    models: ModelsSettings = _setting("Base models.", factory=ModelsSettings)
    sft: SFTSettings = _setting("SFT methods and settings.", factory=SFTSettings)
    rl: RLSettings = _setting("RL baselines and their settings.", factory=RLSettings)
    meml: MEMLSettings = _setting("MEML-GRPO methods and settings.", factory=MEMLSettings)
    eval: EvalSettings = _setting("Evaluation (lm-eval, greedy).", factory=EvalSettings)
    reports: ReportsSettings = _setting("How the tables compare methods.", factory=ReportsSettings)
    complementarity: ComplementaritySettings = _setting("Error-complementarity analysis.",
                                                       factory=ComplementaritySettings)
    world_check: WorldCheckSettings = _setting("The world check on the dev split (synthetic datasets).",
                                               factory=WorldCheckSettings)
    compute: ComputeConfig = _setting("Where jobs run: device, precision, vLLM, launcher, Snakemake resources; speed "
                                     "and memory only, never part of a run's identity.", factory=ComputeConfig)
    sweep: dict[str, list[float]] = _setting(
        "Ablation sweep: dotted option name (rl.<key>, rl.algorithms.<name>.<key>, meml.<key>) -> values; every RL "
        "method the option applies to runs once per point of the product (meml/sweeps.py). A list given in place "
        "(e.g. meml.lambda1: [0.5, 1]) is moved here.", factory=dict, min_items=1)

    def __post_init__(self):
        if len(set(self.datasets)) != len(self.datasets):
            raise ValueError(f"datasets: repeated dataset in {self.datasets}")
        n_experts = self.n_experts
        sft = {Method.parse(m) for m in self.sft.methods}
        for where, names in (("sft.methods", self.sft.methods), ("rl.methods", self.rl.methods),
                             ("meml.methods", self.meml.methods)):
            for name in names:
                method = Method.parse(name)
                try:
                    method.experts(n_experts)
                except ValueError as err:
                    raise ValueError(f"{where}: {err}") from err
                if method.kind != "sft" and method.start not in sft:
                    raise ValueError(f"{where}: {name} starts from {method.start}, which is not in sft.methods")
        grpo = self.rl.run("GRPO")
        for name in self.meml.methods:
            try:
                self.meml.for_method(Method.parse(name)).grpo_run(grpo, n_experts)
            except ValueError as err:
                raise ValueError(f"meml.methods: {name}: {err}") from err
        if self.meml.report_expert >= n_experts:
            raise ValueError(f"meml.report_expert {self.meml.report_expert} is beyond the {n_experts} configured "
                             "experts")
        processes = self.compute.num_processes
        if processes > 1:
            for algorithm in RL_ALGORITHMS:
                self.rl.run(algorithm).per_device_batch(processes)
            for name in self.meml.methods:  # each process must hold whole questions (all G copies)
                run = self.meml.for_method(Method.parse(name)).grpo_run(grpo, n_experts)
                if run.prompts_per_step % processes:
                    raise ValueError(f"meml.methods: {name} samples {run.prompts_per_step} questions a step, which do "
                                     f"not split over compute.num_processes {processes}: set rl.prompts_per_step (or "
                                     "meml.questions_per_step) so that they do")
        for key in ("train_split", "test_split", "rl_split"):
            missing = [d for d in self.datasets if d not in getattr(self.data, key)]
            if missing:
                raise ValueError(f"data.{key} has no split for dataset(s) {missing}")
        missing = [d for d in self.synthetic_datasets if d not in self.data.dev_split]
        if missing:
            raise ValueError(f"data.dev_split has no split for synthetic dataset(s) {missing}")
        unmade = sorted({self.data.dev_split[d] for d in self.synthetic_datasets} - set(self.world.splits))
        if unmade:
            raise ValueError(f"world.splits makes no {unmade} split, which data.dev_split names (the world check "
                             f"reads it): add it to world.splits (it has {sorted(self.world.splits)})")
        real = [d for d in self.datasets if d not in SYNTH]
        programmatic = [i for i, s in enumerate(self.experts.sources) if s["kind"] == "programmatic"]
        if real and programmatic:
            raise ValueError(f"datasets {real} are real benchmarks but experts.sources{programmatic} are programmatic "
                             "teachers, which only work on the synthetic datasets")
        for expert in self.complementarity.experts or []:
            if expert >= n_experts:
                raise ValueError(f"complementarity.experts: expert {expert} is beyond the {n_experts} configured "
                                 "experts")
            if f"Expert{expert}-SFT" not in self.sft.methods:
                raise ValueError(f"complementarity.experts: expert {expert} needs Expert{expert}-SFT, which is not in "
                                 "sft.methods")

    # ----------------------------------------------------------------- derived views

    @property
    def n_experts(self) -> int:
        return len(self.experts.prompts)

    @property
    def synthetic_datasets(self) -> list[str]:
        """The configured synthetic datasets (``synth_*``), in ``datasets`` order."""
        return [d for d in self.datasets if d in SYNTH]

    @property
    def synthetic_tasks(self) -> list[str]:
        """Tasks of the synthetic datasets configured (``synth_gsm8k`` -> ``gsm8k``)."""
        return [d[len("synth_"):] for d in self.datasets if d in SYNTH]

    def complementarity_experts(self) -> list[int]:
        """Experts of the error-complementarity analysis: ``complementarity.experts``, or (null) every expert with an
        ``Expert<k>-SFT`` method in ``sft.methods``, in index order."""
        if self.complementarity.experts is not None:
            return sorted(self.complementarity.experts)
        return [k for k in range(self.n_experts) if f"Expert{k}-SFT" in self.sft.methods]

    def to_mapping(self) -> dict:
        """The whole tree as a workflow-config mapping (what ``results/config.yaml`` holds)."""
        return to_mapping(self)


# --------------------------------------------------------------------------- building


def _schema_errors(config: dict) -> list[str]:
    import jsonschema

    with open(SCHEMA_PATH, encoding="utf-8") as handle:
        schema = yaml.safe_load(handle)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    return [f"  {'.'.join(str(p) for p in e.absolute_path) or '<top level>'}: {e.message}" for e in errors]


def settings_from_config(config: dict, source: str = "config") -> Settings:
    """The settings tree of a workflow-config mapping (Snakemake's ``config``, a YAML file's contents).

    List-valued numeric RL options are first moved under ``sweep:`` (:func:`meml.sweeps.extract_sweeps`);
    the mapping is checked against the JSON schema (every problem listed), then built; errors name the key.
    """
    from meml.sweeps import SweepError, extract_sweeps

    config = copy.deepcopy(config)
    try:
        extract_sweeps(config)
    except SweepError as err:
        raise ConfigError(f"{source}: {err}") from err
    errors = _schema_errors(config)
    if errors:
        raise ConfigError(f"{source}: invalid configuration:\n" + "\n".join(errors))
    try:
        return from_mapping(Settings, config, "config")
    except ConfigError as err:
        message = str(err).removeprefix("config: ").removeprefix("config.")
        raise ConfigError(f"{source}: {message}") from err


def normalize_command_line(config: dict) -> dict:
    """Snakemake's ``--config seeds=[1,2]`` gives strings: turn digit strings in ``seeds`` into integers."""
    if isinstance(config.get("seeds"), list):
        config["seeds"] = [int(s) if isinstance(s, str) and s.isdigit() else s for s in config["seeds"]]
    return config


def read_config(path: str | Path | None = None) -> dict:
    """A workflow config file's mapping (default: ``workflow/config/default.yaml``); errors name the file."""
    path = Path(path) if path is not None else DEFAULT_CONFIG
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    with open(path, encoding="utf-8") as handle:
        try:
            config = yaml.safe_load(handle)
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return config


def load_settings(path: str | Path | None = None, **overrides) -> Settings:
    """The settings of a workflow config file (default: the tiny offline setting); ``overrides`` replace top-level
    keys of the file (e.g. ``results_dir``)."""
    return settings_from_config({**read_config(path), **overrides}, str(path or DEFAULT_CONFIG))


def with_changes(settings: Settings, **sections) -> Settings:
    """A copy of ``settings`` with some keys changed, checked like a config file:
    ``with_changes(s, rl={"steps": 2}, seeds=[0])`` (sections are merged key by key)."""
    config = settings.to_mapping()
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return settings_from_config(config, "changed settings")


def config_digest(*parts) -> str:
    """Short stable hash of settings (dataclasses included): what a rule's ``params`` and a run's identity hold."""
    blob = json.dumps([_jsonable(p) for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _jsonable(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def write_resolved_config(settings: Settings, path: str | Path) -> Path:
    """Write the whole settings tree where jobs read it; leave the file untouched when unchanged."""
    path = Path(path)
    text = yaml.safe_dump(settings.to_mapping(), sort_keys=False)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return path
    from meml.io import write_text_atomic

    return write_text_atomic(path, text)


def schema() -> dict:
    """The JSON schema of the workflow config, generated from :class:`Settings`."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **json_schema(Settings)}


SCHEMA_HEADER = ("# Generated from meml/pipeline/settings.py (Settings) by `meml schema`; do not edit by hand.\n"
                 "# tests/test_settings.py checks that this file matches the settings tree.\n")


def schema_text() -> str:
    return SCHEMA_HEADER + yaml.safe_dump(schema(), sort_keys=False, width=120)


def write_schema(path: str | Path = SCHEMA_PATH) -> Path:
    from meml.io import write_text_atomic

    return write_text_atomic(Path(path), schema_text())
