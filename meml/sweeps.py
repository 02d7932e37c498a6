"""Ablation sweeps: list-valued numeric options of the RL methods expand into one run per combination.

Any numeric option of the ``rl`` section (every RL method and MEML-GRPO), of ``rl.algorithms.<name>``
(that algorithm's methods; MEML-GRPO runs on GRPO's) or of ``meml`` (MEML-GRPO) may be given a list
in the workflow config, or listed under ``sweep:`` with its dotted name::

    meml: {lambda1: [0.5, 1.0, 2.0], lambda2: [0.0, 1.0]}      # or
    sweep: {meml.lambda1: [0.5, 1.0, 2.0], meml.lambda2: [0.0, 1.0]}

:func:`extract_sweeps` moves in-place lists under ``sweep:`` (the option keeps the first value, so
the rest of the config stays scalar and validates as usual). Every method an option applies to then
runs once per point of the product of its options' values, under a tagged name such as
``MEML-GRPO+lambda1=0.5+lambda2=0`` (``+<option>=<value>``, options in config order; an algorithm
option is tagged ``<algorithm>.<option>``). :func:`apply_point` gives a tagged method's config.
Options upstream of RL (pretraining, SFT, experts, data) are not swept: their lists are an error.
"""

from __future__ import annotations

import itertools
import numbers
from dataclasses import replace
from pathlib import Path

from meml.methods import RL_ALGORITHMS, Method

SECTIONS = ("rl", "meml")
NOT_OPTIONS = {"rl": {"methods", "algorithms"}, "meml": {"methods", "report_expert"}}


class SweepError(ValueError):
    """A sweep setting that cannot be run; the message names the config key."""


def _is_number_list(value) -> bool:
    return (isinstance(value, list) and bool(value)
            and all(isinstance(v, numbers.Number) and not isinstance(v, bool) for v in value))


def extract_sweeps(config: dict) -> dict:
    """Move list-valued numeric options of ``rl``, ``rl.algorithms.*`` and ``meml`` under ``config["sweep"]``."""
    sweep = dict(config.get("sweep") or {})
    places = [("rl", config.get("rl") or {}), ("meml", config.get("meml") or {})]
    places += [(f"rl.algorithms.{name}", section or {})
               for name, section in ((config.get("rl") or {}).get("algorithms") or {}).items()]
    for prefix, section in places:
        skip = NOT_OPTIONS.get(prefix, set())
        for key, value in list(section.items()):
            if key in skip or not _is_number_list(value):
                continue
            dotted = f"{prefix}.{key}"
            if dotted in sweep and list(sweep[dotted]) != value:
                raise SweepError(f"{dotted}: a list in place and a different one under sweep.{dotted}")
            sweep[dotted] = list(value)
            section[key] = value[0]
    for dotted, values in sweep.items():
        _check_option(config, dotted, values)
        _set(config, dotted, values[0])
    config["sweep"] = sweep
    short = [short_name(d) for d in sweep]
    if len(set(short)) != len(short):
        raise SweepError(f"sweep: two swept options share a short name ({short}); sweep one of them at a time")
    return config


def _check_option(config: dict, dotted: str, values) -> None:
    parts = dotted.split(".")
    ok = (parts[0] in SECTIONS and len(parts) == 2 and parts[1] not in NOT_OPTIONS[parts[0]]) or (
        parts[:2] == ["rl", "algorithms"] and len(parts) == 4 and parts[2] in RL_ALGORITHMS)
    if not ok:
        raise SweepError(f"sweep.{dotted}: only numeric options of rl, rl.algorithms.<name> and meml can be swept "
                         f"(pretraining, SFT, experts and data are shared by every run)")
    if not _is_number_list(values):
        raise SweepError(f"sweep.{dotted}: expected a non-empty list of numbers, got {values!r}")
    if len(set(values)) != len(values):
        raise SweepError(f"sweep.{dotted}: repeated values {values}")


def _set(config: dict, dotted: str, value) -> None:
    *parents, key = dotted.split(".")
    node = config
    for part in parents:
        node = node.setdefault(part, {})
    node[key] = value


def short_name(dotted: str) -> str:
    """``meml.lambda1`` -> ``lambda1``; ``rl.algorithms.DAPO.max_sampling_rounds`` -> ``DAPO.max_sampling_rounds``."""
    parts = dotted.split(".")
    return ".".join(parts[2:]) if parts[:2] == ["rl", "algorithms"] else parts[-1]


def output_files(settings) -> list[Path]:
    """What a sweep writes under ``<results>/sweeps/``: the tables of every point, then per swept option
    its table and plot (none without a sweep). :func:`reports.sweeps.write_sweeps` writes exactly these."""
    if not settings.sweep:
        return []
    out = Path(settings.results_dir) / "sweeps"
    files = [out / "sweep.md", out / "sweep.csv", out / "sweep_runs.csv"]
    for option in map(short_name, settings.sweep):
        files += [out / f"{option}.{ext}" for ext in ("md", "csv", "png", "pdf")]
    return files


def format_value(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def options_of(settings, method: Method) -> list[str]:
    """The swept options (dotted) that apply to ``method``, in config order."""
    if not method.trains_rl:  # an SFT method: nothing here applies
        return []
    out = []
    for dotted in settings.sweep:
        parts = dotted.split(".")
        if parts[0] == "meml" and method.kind != "meml":
            continue
        if parts[:2] == ["rl", "algorithms"] and parts[2] != method.algorithm:
            continue
        out.append(dotted)
    return out


def expand_methods(settings, methods: list[str]) -> list[str]:
    """Every method of ``methods`` once per point of the product of its swept options (untouched if none)."""
    out = []
    for name in methods:
        method = Method.parse(name)
        options = options_of(settings, method)
        if not options:
            out.append(name)
            continue
        for values in itertools.product(*(settings.sweep[o] for o in options)):
            tags = tuple((short_name(o), format_value(v)) for o, v in zip(options, values))
            out.append(str(replace(method, tags=tags)))
    return out


def point_of(settings, method: Method) -> dict:
    """``{dotted option: value}`` of a tagged method; errors name the method."""
    options = {short_name(o): o for o in options_of(settings, method)}
    point = {}
    for name, text in method.tags:
        if name not in options:
            raise SweepError(f"{method}: {name!r} is not a swept option of this method ({sorted(options)})")
        match = [v for v in settings.sweep[options[name]] if format_value(v) == text]
        if not match:
            raise SweepError(f"{method}: {text!r} is not one of sweep.{options[name]} {settings.sweep[options[name]]}")
        point[options[name]] = match[0]
    return point


def apply_point(settings, method: Method):
    """``settings`` with the option values of a tagged method set (``settings`` itself when untagged)."""
    if not method.tags:
        return settings
    rl, meml = settings.rl, settings.meml
    for dotted, value in point_of(settings, method).items():
        parts = dotted.split(".")
        if parts[0] == "meml":
            meml = replace(meml, **{parts[1]: value})
        elif len(parts) == 2:
            rl = replace(rl, **{parts[1]: value})
        else:
            algorithms = {**rl.algorithms, parts[2]: {**(rl.algorithms.get(parts[2]) or {}), parts[3]: value}}
            rl = replace(rl, algorithms=algorithms)
    return replace(settings, rl=rl, meml=meml)


def rl_methods(settings, algorithm: str) -> list[str]:
    """The configured RL methods of one algorithm, e.g. ``[Expert0-SFT-GRPO, ..., MoE-SFT-GRPO]``, each once
    per sweep point when options of it are swept."""
    return expand_methods(settings, [m for m in settings.rl.methods if Method.parse(m).algorithm == algorithm])


def meml_methods(settings) -> list[str]:
    """The configured MEML-GRPO methods, each once per sweep point of its swept options."""
    return expand_methods(settings, settings.meml.methods)


MEML_GROUP = "MEML-GRPO"  # the job name of the MEML-GRPO methods of one sweep point (all of them without a sweep)


def meml_group(settings, method: str) -> str:
    """The riel job that trains a MEML-GRPO method: ``MEML-GRPO`` plus its sweep tags (one job per sweep point), or
    the method itself when ``compute.group_meml_runs`` is off."""
    if not settings.compute.group_meml_runs:
        return method
    return str(replace(Method.parse(MEML_GROUP), tags=Method.parse(method).tags))


def meml_groups(settings) -> dict[str, list[str]]:
    """``{riel job: its methods}`` in :func:`meml_methods` order."""
    groups: dict[str, list[str]] = {}
    for method in meml_methods(settings):
        groups.setdefault(meml_group(settings, method), []).append(method)
    return groups


def rl_algorithms(settings) -> list[str]:
    """The RL algorithms with at least one configured method."""
    return [a for a in RL_ALGORITHMS if rl_methods(settings, a)]
