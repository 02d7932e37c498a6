"""The house follows the pipeline: each room imports only the rooms below it (no import circle, no upward import).

Rooms, bottom to top: the core (small shared modules: settings fields, method names, paths, records, io),
the world, rewards, tiny models and data loaders, the experts, the shared training machinery and
evaluation, then the baselines and the method (each built on the training machinery, never on each
other), the reports, and the pipeline (CLI, stages, settings tree) on top. Function-level imports count.
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("meml", "baselines", "reports")

CORE = ("meml.io", "meml.records", "meml.prompts", "meml.mathqa_options", "meml.provenance", "meml.fields",
        "meml.methods", "meml.paths", "meml.sweeps")
ROOMS = {  # room: (module prefixes, rooms it may import)
    "core": (CORE, set()),
    "world": (("meml.world",), {"core"}),
    "rewards": (("meml.rewards",), {"core"}),
    "tiny": (("meml.tiny",), {"core"}),
    "data": (("meml.data",), {"core"}),
    "experts": (("meml.experts",), {"core", "world", "rewards"}),
    "training": (("meml.training",), {"core", "rewards", "tiny"}),
    "evaluation": (("meml.evaluation", "meml.vllm_backend"), {"core", "rewards", "tiny", "training"}),
    "baselines": (("baselines",), {"core", "training"}),
    "method": (("meml.method",), {"core", "training"}),
    "reports": (("reports",), {"core", "data", "rewards"}),
    "pipeline": (("meml.pipeline", "meml.__main__"), {"core", "world", "rewards", "tiny", "data", "experts",
                                                               "training", "evaluation", "baselines", "method",
                                                               "reports"}),
}


def room_of(module: str) -> str:
    """The room of a dotted module name: the longest matching prefix (the empty ``meml`` package is the core)."""
    if module == "meml":
        return "core"
    best, length = None, -1
    for room, (prefixes, _) in ROOMS.items():
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > length:
                best, length = room, len(prefix)
    if best is None:
        raise AssertionError(f"{module} belongs to no room: add it to tests/test_architecture.py ROOMS")
    return best


def project_modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            out[".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")] = path
    return out


def imports_of(path: Path) -> set[str]:
    """Every project module ``path`` imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    modules = project_modules()
    return {name for name in found if name in modules}


def test_the_allowed_room_graph_has_no_cycle():
    graph = {room: allowed for room, (_, allowed) in ROOMS.items()}
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as err:  # pragma: no cover - the test's own table
        pytest.fail(f"the room table has a cycle: {err}")
    assert order[0] == "core" and order[-1] == "pipeline"


def test_every_import_goes_down_the_house():
    upward = []
    for module, path in sorted(project_modules().items()):
        source = room_of(module)
        for target in sorted(imports_of(path)):
            destination = room_of(target)
            if destination != source and destination not in ROOMS[source][1]:
                upward.append(f"{module} ({source}) imports {target} ({destination})")
    assert not upward, "imports against the room order:\n" + "\n".join(upward)


def test_only_the_pipeline_reads_the_settings_tree_module():
    readers = [m for m, p in project_modules().items() if "meml.pipeline.settings" in imports_of(p)
               and room_of(m) != "pipeline"]
    assert not readers  # rooms below take settings objects as arguments


def test_the_room_test_catches_an_upward_import(tmp_path):
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("def f():\n    from meml.pipeline import stages\n")
    assert imports_of(sneaky) == {"meml.pipeline", "meml.pipeline.stages"}  # function-level imports count
    assert {room_of(t) for t in imports_of(sneaky)} == {"pipeline"} and "pipeline" not in ROOMS["training"][1]
