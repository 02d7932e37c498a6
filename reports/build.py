"""Rebuild every table and figure from the raw results already under ``results/`` (``meml reports``).

No training or evaluation runs here; a missing or corrupt result file is an error that names it.
With a sweep configured, the sweep's tables and plots are built instead of the paper's tables.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def builders(settings) -> dict:
    """Name -> function(settings) writing that output, for the configured workflow."""
    from reports.claims import write_claims
    from reports.figures import write_figure2, write_sparsity
    from reports.sweeps import write_sweeps
    from reports.table4 import write_table4
    from reports.table5 import write_table5
    from reports.table6 import table6_methods, write_table6

    if settings.sweep:
        return {"sweeps": write_sweeps}
    out = {"table4": write_table4}
    if settings.meml.methods:
        out["table5"] = write_table5
    if table6_methods(settings):
        out["table6"] = write_table6
    if settings.complementarity_experts():
        from reports.complementarity import write_complementarity

        out["complementarity"] = write_complementarity
    if settings.synthetic_datasets:
        from reports.world_check import write_world_check

        out["world_check"] = write_world_check
    return {**out, "figure2": write_figure2, "sparsity": write_sparsity, "claims": write_claims}


def rebuild(settings, only: list[str] | None = None) -> list[Path]:
    """Run the builders (``only``: a subset by name); return every file written."""
    available = builders(settings)
    unknown = sorted(set(only or []) - set(available))
    if unknown:
        raise ValueError(f"reports: unknown output(s) {unknown}; available here: {sorted(available)}")
    written = []
    for name, build in available.items():
        if only and name not in only:
            continue
        files = build(settings)
        log.info("%s: %s", name, ", ".join(str(f) for f in files))
        written += files
    return written
