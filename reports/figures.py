"""Figures from the raw per-step RL logs: training-reward curves (Figure 2) and reward sparsity.

Every curve is rebuilt from the ``metrics.jsonl`` log each finished RL run leaves in
:func:`meml.paths.rl_dir` (one JSON object per logged step, see :mod:`meml.training.rl_log`); nothing
is typed by hand and no other file is read.

- Figure 2: ``accuracy`` (mean accuracy reward of the freshly sampled groups) against the step,
  the full MEML-GRPO method against the RL baselines of ``rl.methods`` (GRPO, Dr.GRPO, DAPO from
  single-expert and MoE SFT starts). One panel per dataset in the paper's column order (GSM8K,
  StrategyQA, MathQA); ``figures/figure2_<family>.{png,pdf}`` per base-model family, and
  ``figures/figure2.{png,pdf}`` with one row of panels per family.
- Sparsity: ``frac_all_zero`` (fraction of sampled groups whose rewards are all zero, which give
  GRPO no gradient) against the step for every RL and MEML method; rows = families, columns =
  datasets, in ``figures/sparsity.{png,pdf}``.

Lines are the mean over seeds at each step; with two or more seeds a shaded band shows the 95%
Student-t interval over seeds (:func:`reports.stats.mean_interval`). A method keeps its colour in
every panel and figure; the full MEML-GRPO method is drawn in black, thicker and on top; methods
that start from a single expert are dashed.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from meml import paths
from meml.io import write_bytes_atomic
from meml.methods import Method
from meml.records import task_of
from reports.markdown import FAMILY_NAMES
from reports.stats import mean_interval
from reports.summary import COLUMN_NAMES, COLUMN_ORDER

FIGURES_DIR = "figures"
FORMATS = ("png", "pdf")
DPI = 150
MIN_WIDTH = 9.0  # inches
LEGEND_COLUMN_WIDTH = 2.7  # inches per legend column
BAND_ALPHA = 0.2
FULL_METHOD_COLOR = "black"
REWARD_LABEL = "training reward (accuracy)"
SPARSITY_LABEL = "fraction of all-zero-reward groups"


# ---------------------------------------------------------------- reading the logs


def _run_label(path: Path) -> str:
    """``qwen2/synth_gsm8k/MEML-GRPO seed 0`` from ``.../rl/<family>/<dataset>/<method>/seed<k>/metrics.jsonl``."""
    parts = path.parts
    if len(parts) >= 6 and parts[-6] == "rl" and parts[-2].startswith("seed"):
        family, dataset, method, seed = parts[-5], parts[-4], parts[-3], parts[-2][4:]
        return f"the RL run {method} of {family}/{dataset}, seed {seed}"
    return "the RL run that owns this folder"


def read_metrics(path: str | Path, column: str | None = None) -> pd.DataFrame:
    """The rows of one run's ``metrics.jsonl`` as a frame sorted by ``step``.

    Errors name the file: a missing file (and the run that writes it), a line that is not JSON,
    a row without an integer ``step`` or without a numeric ``column`` (when given), a repeated step.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"metrics file {path} is missing: it is written when {_run_label(path)} "
                                f"finishes; run the workflow (snakemake) to produce it")
    rows, seen = [], {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"metrics file {path}, line {lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{where}: corrupt row (not JSON: {err}); delete the run and rerun it") from err
        if not isinstance(row, dict):
            raise ValueError(f"{where}: a row must be a JSON object, got {type(row).__name__}")
        step = row.get("step")
        if not isinstance(step, int) or isinstance(step, bool):
            raise ValueError(f"{where}: no integer 'step' field (got {step!r})")
        if column is not None:
            value = row.get(column)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ValueError(f"{where}: no numeric {column!r} field (got {value!r})")
        if step in seen:
            raise ValueError(f"{where}: step {step} repeats line {seen[step]}")
        seen[step] = lineno
        rows.append(row)
    if not rows:
        raise ValueError(f"metrics file {path} has no rows; delete the run and rerun it")
    return pd.DataFrame(rows).sort_values("step", kind="stable").reset_index(drop=True)


def curve(frames: list[pd.DataFrame], column: str) -> pd.DataFrame:
    """Mean over seeds of ``column`` at each step, with its 95% interval (one frame per seed).

    Seeds are aligned on ``step``; a step some seed did not log is averaged over the seeds that
    did. Columns: ``step, mean, low, high`` (low and high are nan where fewer than two seeds).
    """
    if not frames:
        raise ValueError(f"curve of {column!r}: no runs given")
    series = []
    for index, frame in enumerate(frames):
        if frame["step"].duplicated().any():
            raise ValueError(f"curve of {column!r}: run {index} logs a step twice")
        series.append(frame.set_index("step")[column].astype(float).rename(index))
    wide = pd.concat(series, axis=1, join="outer").sort_index()
    rows = [(int(step), *mean_interval(values)) for step, values in zip(wide.index, wide.to_numpy())]
    return pd.DataFrame(rows, columns=["step", "mean", "low", "high"])


def run_curve(settings, family: str, dataset: str, method: str, column: str) -> pd.DataFrame:
    """:func:`curve` of ``column`` over the configured seeds of one (family, dataset, method)."""
    root = settings.results_dir
    frames = [read_metrics(paths.rl_dir(root, family, dataset, method, seed) / "metrics.jsonl", column)
              for seed in settings.seeds]
    return curve(frames, column)


# ---------------------------------------------------------------- what is plotted


def full_meml_methods(settings) -> list[str]:
    """The MEML-GRPO methods of ``meml.methods`` with HSFT and IML both on (not ablations)."""
    return [m for m in settings.meml.methods if (v := Method.parse(m)).hsft and v.iml]


def figure2_methods(settings) -> list[str]:
    """Figure 2's lines: the RL baselines of ``rl.methods``, then the full MEML-GRPO method(s)."""
    return _unique([*settings.rl.methods, *full_meml_methods(settings)])


def sparsity_methods(settings) -> list[str]:
    """The sparsity figure's lines: every method of ``rl.methods`` and ``meml.methods``."""
    return _unique([*settings.rl.methods, *settings.meml.methods])


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def panel_datasets(settings) -> list[str]:
    """The configured datasets in the paper's column order (GSM8K, StrategyQA, MathQA)."""
    order = {task: index for index, task in enumerate(COLUMN_ORDER)}
    return sorted(settings.datasets, key=lambda d: order.get(task_of(d), len(order)))


def panel_title(settings, dataset: str) -> str:
    """The column display name; the dataset name is added when two datasets share a task."""
    task = task_of(dataset)
    name = COLUMN_NAMES.get(task, task)
    if sum(task_of(d) == task for d in settings.datasets) > 1:
        name += f" ({dataset})"
    return name


def method_styles(settings) -> dict[str, dict]:
    """Line style per method, the same in every panel and figure of one settings."""
    full = set(full_meml_methods(settings))
    others = [m for m in sparsity_methods(settings) if m not in full]
    palette = "tab10" if len(others) <= 10 else "tab20"
    from matplotlib import colormaps

    colors = colormaps[palette].colors
    styles = {}
    for index, method in enumerate(others):
        styles[method] = {"color": colors[index % len(colors)], "linewidth": 1.4, "zorder": 2}
    for method in full:
        styles[method] = {"color": FULL_METHOD_COLOR, "linewidth": 2.6, "zorder": 4}
    for method, style in styles.items():
        style["linestyle"] = "--" if _single_expert_start(method) else "-"
    return styles


def _single_expert_start(method: str) -> bool:
    return not Method.parse(method).moe


def figure_subtitle(settings) -> str:
    """The seeds, the band, and the setting (synthetic data: not the paper's numbers)."""
    seeds = list(settings.seeds)
    text = (f"mean over seeds {seeds}, band: 95% interval" if len(seeds) >= 2
            else f"seed {seeds} (one seed: no interval band)")
    if all(d.startswith("synth_") for d in settings.datasets):
        text += "; tiny offline setting, not the paper's numbers"
    return text


# ---------------------------------------------------------------- drawing


def build_figure(settings, families: list[str], methods: list[str], column: str, ylabel: str,
                 title: str) -> Figure:
    """A grid of panels (rows = ``families``, columns = datasets) of ``column`` against the step."""
    datasets = panel_datasets(settings)
    styles = method_styles(settings)
    width = max(1.0 + 3.6 * len(datasets), MIN_WIDTH)  # room for the title and legend over few panels
    fig = Figure(figsize=(width, 1.6 + 2.8 * len(families)), layout="constrained")
    axes = fig.subplots(len(families), len(datasets), sharex=True, sharey=True, squeeze=False)
    handles = {}
    for row, family in enumerate(families):
        for col, dataset in enumerate(datasets):
            ax = axes[row][col]
            for method in methods:
                line = draw_curve(ax, run_curve(settings, family, dataset, method, column), styles[method])
                handles.setdefault(method, line)
            ax.set_title(panel_title(settings, dataset) if row == 0 else "")
            ax.grid(alpha=0.3)
            if col == 0:
                ax.set_ylabel(f"{FAMILY_NAMES.get(family, family)}\n{ylabel}")
            if row == len(families) - 1:
                ax.set_xlabel("step")
    axes[0][0].set_ylim(-0.02, 1.02)
    fig.suptitle(f"{title}\n{figure_subtitle(settings)}")
    fig.legend([handles[m] for m in methods], methods, loc="outside lower center",
               ncols=min(len(methods), max(1, int(width // LEGEND_COLUMN_WIDTH))), frameon=False)
    return fig


def draw_curve(ax, frame: pd.DataFrame, style: dict):
    """The mean as a line, and the interval as a band where there is one; returns the line."""
    (line,) = ax.plot(frame["step"], frame["mean"], **style)
    if frame["low"].notna().any():
        ax.fill_between(frame["step"], frame["low"], frame["high"], color=style["color"],
                        alpha=BAND_ALPHA, linewidth=0, zorder=style["zorder"] - 1)
    return line


def _families(settings, family: str | None) -> list[str]:
    return list(settings.models.families) if family is None else [family]


def _family_names(families: list[str]) -> str:
    return ", ".join(FAMILY_NAMES.get(f, f) for f in families)


def build_figure2(settings, family: str | None = None) -> Figure:
    """Figure 2 for one family (one row of panels), or every family (one row each) when None."""
    families = _families(settings, family)
    title = f"Training reward vs step: MEML-GRPO and RL baselines ({_family_names(families)})"
    return build_figure(settings, families, figure2_methods(settings), "accuracy", REWARD_LABEL, title)


def build_sparsity(settings) -> Figure:
    """Fraction of all-zero-reward groups vs step for every RL method; rows = families."""
    families = _families(settings, None)
    title = f"Reward sparsity vs step: every RL method ({_family_names(families)})"
    return build_figure(settings, families, sparsity_methods(settings), "frac_all_zero", SPARSITY_LABEL, title)


# ---------------------------------------------------------------- writing


def figures_dir(settings) -> Path:
    return Path(settings.results_dir) / FIGURES_DIR


def save_figure(fig: Figure, stem: str | Path) -> list[Path]:
    """``<stem>.png`` and ``<stem>.pdf``, each written atomically; no timestamps in the files.

    The layout is computed once, by the first format's draw, and reused by the others.
    """
    out, engine = [], fig.get_layout_engine()
    try:
        for fmt in FORMATS:
            buffer = io.BytesIO()
            metadata = {"CreationDate": None} if fmt == "pdf" else {"Software": None}
            fig.savefig(buffer, format=fmt, dpi=DPI, metadata=metadata)
            fig.set_layout_engine("none")
            out.append(write_bytes_atomic(Path(f"{stem}.{fmt}"), buffer.getvalue()))
    finally:
        fig.set_layout_engine(engine)
    return out


def write_figure2(settings) -> list[Path]:
    """``figures/figure2_<family>.{png,pdf}`` per family and the combined ``figures/figure2.{png,pdf}``."""
    folder = figures_dir(settings)
    written = []
    for family in settings.models.families:
        written += save_figure(build_figure2(settings, family), folder / f"figure2_{family}")
    written += save_figure(build_figure2(settings), folder / "figure2")
    return written


def write_sparsity(settings) -> list[Path]:
    """``figures/sparsity.{png,pdf}``."""
    return save_figure(build_sparsity(settings), figures_dir(settings) / "sparsity")
