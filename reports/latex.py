"""LaTeX rendering shared by the table builders: booktabs tabulars, one block per base-model family."""

from __future__ import annotations

import pandas as pd

from reports.markdown import FAMILY_NAMES, cell

_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
            "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped (``±`` and ``†`` become math symbols)."""
    out = "".join(_SPECIAL.get(ch, ch) for ch in str(text))
    return out.replace("±", r"$\pm$").replace("†", r"$\dagger$")


def latex_table(table: pd.DataFrame, caption: str, label: str, first_column: str) -> str:
    """A ``table`` environment holding a booktabs ``tabular``: the index, then every column.

    A two-level index whose first level is ``family`` gets one mid-table heading per family.
    """
    columns = [first_column] + [str(c) for c in table.columns]
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{escape(caption)}}}", rf"\label{{{label}}}",
             r"\begin{tabular}{l" + "r" * len(table.columns) + "}", r"\toprule",
             " & ".join(escape(c) for c in columns) + r" \\", r"\midrule"]
    grouped = isinstance(table.index, pd.MultiIndex) and table.index.names[0] == "family"
    if grouped:
        for n, family in enumerate(table.index.get_level_values("family").unique()):
            if n:
                lines.append(r"\midrule")
            lines.append(rf"\multicolumn{{{len(columns)}}}{{l}}{{\textit{{{escape(FAMILY_NAMES.get(family, family))}}}}} \\")
            lines += _rows(table.loc[family])
    else:
        lines += _rows(table)
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


def _rows(block: pd.DataFrame) -> list[str]:
    return [" & ".join([escape(label if not isinstance(label, tuple) else " ".join(map(str, label)))]
                       + [escape(cell(v)) for v in values]) + r" \\"
            for label, values in block.iterrows()]
