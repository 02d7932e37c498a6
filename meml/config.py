"""Load and check the workflow configuration (one YAML file describes a whole run)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jsonschema
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"
DEFAULT_CONFIG = REPO_ROOT / "workflow" / "config" / "default.yaml"


class ConfigError(ValueError):
    """A configuration that does not match the schema or is inconsistent."""


def _schema() -> dict:
    with open(SCHEMA_PATH, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def validate_config(config: dict, source: str = "config") -> dict:
    """Check ``config`` against the schema and cross-key rules; raise :class:`ConfigError` naming the key.

    List-valued numeric RL options are first moved under ``sweep:`` (:func:`meml.sweeps.extract_sweeps`).
    """
    from meml.sweeps import SweepError, extract_sweeps

    try:
        extract_sweeps(config)
    except SweepError as err:
        raise ConfigError(f"{source}: {err}") from err
    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for err in errors:
            key = ".".join(str(p) for p in err.absolute_path) or "<top level>"
            lines.append(f"  {key}: {err.message}")
        raise ConfigError(f"{source}: invalid configuration:\n" + "\n".join(lines))
    n_experts = len(config["experts"]["prompts"])
    if len(config["experts"]["sources"]) != n_experts:
        raise ConfigError(
            f"{source}: experts.sources has {len(config['experts']['sources'])} entries but experts.prompts has "
            f"{n_experts}: give one source per expert prompt"
        )
    for method in config["sft"]["methods"]:
        if method.startswith("Expert") and int(method[6:].split("-")[0]) >= n_experts:
            raise ConfigError(f"{source}: sft.methods: {method} names an expert beyond the {n_experts} configured")
    from baselines.rl import split_method, start_experts
    from baselines.rl_config import RLRunConfig
    from meml.paths import RL_ALGORITHMS, meml_variant

    for method in config["rl"]["methods"]:
        start, _ = split_method(method)
        if start not in config["sft"]["methods"]:
            raise ConfigError(f"{source}: rl.methods: {method} starts from {start}, which is not in sft.methods")
        try:
            start_experts(start, n_experts)
        except ValueError as err:
            raise ConfigError(f"{source}: rl.methods: {method}: {err}") from err

    for algorithm in RL_ALGORITHMS:
        try:
            RLRunConfig.for_algorithm(algorithm, config["rl"])
        except ValueError as err:
            raise ConfigError(f"{source}: {err}") from err
    from meml.riel_config import MEMLConfig

    for method in config["meml"]["methods"]:
        try:
            settings = MEMLConfig.for_method(method, config["meml"])
            settings.grpo_run(RLRunConfig.for_algorithm("GRPO", config["rl"]), n_experts)
        except ValueError as err:
            raise ConfigError(f"{source}: meml.methods: {method}: {err}") from err
        start = meml_variant(method).start
        if start not in config["sft"]["methods"]:
            raise ConfigError(f"{source}: meml.methods: {method} starts from {start}, which is not in sft.methods")
    if config["meml"]["report_expert"] >= n_experts:
        raise ConfigError(f"{source}: meml.report_expert {config['meml']['report_expert']} is beyond the "
                          f"{n_experts} configured experts")
    from meml.compute import ComputeConfig

    try:
        compute = ComputeConfig.from_config(config)
    except ValueError as err:
        raise ConfigError(f"{source}: {err}") from err
    if compute.num_processes > 1:
        try:
            for algorithm in RL_ALGORITHMS:
                RLRunConfig.for_algorithm(algorithm, config["rl"]).per_device_batch(compute.num_processes)
        except ValueError as err:
            raise ConfigError(f"{source}: {err}") from err
        for method in config["meml"]["methods"]:  # each process must hold whole questions (all G copies)
            grpo = MEMLConfig.for_method(method, config["meml"]).grpo_run(
                RLRunConfig.for_algorithm("GRPO", config["rl"]), n_experts)
            if grpo.prompts_per_step % compute.num_processes:
                raise ConfigError(f"{source}: meml.methods: {method} samples {grpo.prompts_per_step} questions a step, "
                                  f"which do not split over compute.num_processes {compute.num_processes}: set "
                                  "rl.prompts_per_step (or meml.questions_per_step) so that they do")
    for key in ("train_split", "test_split", "rl_split"):
        missing = [d for d in config["datasets"] if d not in config["data"][key]]
        if missing:
            raise ConfigError(f"{source}: data.{key} has no split for dataset(s) {missing}")
    for i, spec in enumerate(config["experts"]["sources"]):
        if spec["kind"] == "programmatic" and "style" not in spec:
            raise ConfigError(f"{source}: experts.sources[{i}]: a programmatic source needs 'style'")
        if spec["kind"] in ("openai", "local"):
            from meml.teachers import spec_problem

            problem = spec_problem(spec)  # openai: base_url and model; local: model; keys of the kind
            if problem:
                raise ConfigError(f"{source}: experts.sources[{i}]: {problem}")
    real = [d for d in config["datasets"] if not d.startswith("synth_")]
    programmatic = [i for i, s in enumerate(config["experts"]["sources"]) if s["kind"] == "programmatic"]
    if real and programmatic:
        raise ConfigError(
            f"{source}: datasets {real} are real benchmarks but experts.sources{programmatic} are programmatic "
            "teachers, which only work on the synthetic datasets"
        )
    for expert in config["complementarity"]["experts"] or []:
        if expert >= n_experts:
            raise ConfigError(f"{source}: complementarity.experts: expert {expert} is beyond the {n_experts} "
                              "configured experts")
        if f"Expert{expert}-SFT" not in config["sft"]["methods"]:
            raise ConfigError(f"{source}: complementarity.experts: expert {expert} needs Expert{expert}-SFT, "
                              "which is not in sft.methods")
    return config


def normalize_command_line(config: dict) -> dict:
    """Snakemake's ``--config seeds=[1,2]`` gives strings: turn digit strings in ``seeds`` into integers."""
    if isinstance(config.get("seeds"), list):
        config["seeds"] = [int(s) if isinstance(s, str) and s.isdigit() else s for s in config["seeds"]]
    return config


def load_config(path: str | Path | None = None) -> dict:
    """Read a workflow config (default: the tiny offline setting) and validate it."""
    path = Path(path) if path is not None else DEFAULT_CONFIG
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    with open(path, encoding="utf-8") as handle:
        try:
            config = yaml.safe_load(handle)
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return validate_config(config, str(path))


def config_digest(*parts) -> str:
    """Short stable hash of config sections: Snakemake params, so a changed setting reruns its jobs."""
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def write_resolved_config(config: dict, path: str | Path) -> Path:
    """Write the effective config where jobs read it; leave the file untouched when unchanged."""
    path = Path(path)
    text = yaml.safe_dump(config, sort_keys=False)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return path
    from meml.io import write_text_atomic

    return write_text_atomic(path, text)


def complementarity_experts(config: dict) -> list[int]:
    """Experts of the error-complementarity analysis: ``complementarity.experts``, or (null) every
    expert with an ``Expert<k>-SFT`` method in ``sft.methods``, in index order."""
    chosen = config["complementarity"]["experts"]
    if chosen is not None:
        return sorted(chosen)
    n_experts = len(config["experts"]["prompts"])
    return [k for k in range(n_experts) if f"Expert{k}-SFT" in config["sft"]["methods"]]
