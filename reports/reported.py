"""The paper's reported numbers (reports/reported_numbers.csv), shown beside ours in the paper setting.

The numbers come from a secondary summary of arXiv 2508.09670 and were NOT checked against the
paper's PDF; every table that shows them labels them so. Table 5's rows are named by the method
that implements the row's switches here (MoE/HSFT/IML off/off/off = MEML-GRPO-Expert1-noHSFT-noIML).
They are never shown for the tiny setting, whose numbers are not comparable.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

REPORTED_FILE = Path(__file__).with_name("reported_numbers.csv")
SOURCE = "reported, secondary source, unverified"
SOURCE_NOTE = ("Reported numbers (reported, secondary source, unverified): arXiv 2508.09670 as summarised in the "
               "project's method notes, not checked against the paper's PDF; Expert1 inference prompt.")
COLUMNS = ("GSM8K", "StrategyQA", "MathQA", "Avg")


def reported(table: str, path: str | Path = REPORTED_FILE) -> pd.DataFrame:
    """Rows of one table (``table4`` or ``table5``) of the reported-numbers file; errors name the file."""
    path = Path(path)
    try:
        data = pd.read_csv(path)
    except (OSError, pd.errors.ParserError) as err:
        raise ValueError(f"reported-numbers file {path} cannot be read: {err}") from err
    missing = {"table", "base", "method", "expert", *COLUMNS} - set(data.columns)
    if missing:
        raise ValueError(f"reported-numbers file {path} lacks columns {sorted(missing)}")
    return data[data["table"] == table].reset_index(drop=True)


def shows_reported(settings) -> bool:
    """Reported numbers sit beside ours only in the paper setting (never the tiny one)."""
    return settings.setting == "paper" and not any(d.startswith("synth_") for d in settings.datasets)
