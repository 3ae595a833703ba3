"""Writing table frames: Parquet and CSV for programs, Markdown, LaTeX and HTML for people.

- Parquet keeps the raw numbers, a `weights_official` column and the notes in its metadata.
- CSV is plain: one header row and data rows, read by `pandas.read_csv(path)` with no options.
- Markdown, LaTeX and HTML show "mean [lo, hi]" cells and numbered notes under the table;
  the HTML is a self-contained styled page (what `snakemake --report` shows).
With stand-in (non-official) LPIPS/DISTS/Inception weights, the learned metrics' cells read
"n/a (stand-in weights)" in the CSV, Markdown, LaTeX and HTML views; Parquet keeps the raw
values beside weights_official = false. LaTeX tables wider than a page are split into column
blocks that repeat the identifying columns.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from vaebench.cells import METRIC_KEYS, auto_footnotes, display, mask_stand_in
from vaebench.config import TABLE_FORMATS
from vaebench.io import atomic_path, provenance, save_parquet
from vaebench.metrics.files import settings_footnotes
from vaebench.names import STAND_IN, WEIGHTS_WARNING, metric_base

# Columns repeated in every LaTeX column block.
ID_COLUMNS = (
    "label",
    "sampler",
    "n_seeds",
    "level",
    "metric",
    "metric_a",
    "metric_b",
    "row_a",
    "row_b",
)
TEX_MAX_COLUMNS = 7


def to_markdown(
    df: pd.DataFrame,
    title: str,
    footnotes: Sequence[str],
    weights_official: bool,
    settings: dict[str, Any] | None = None,
) -> str:
    """A Markdown table with "mean [lo, hi]" cells, the weights warning, and numbered notes."""
    _, headers, rows, right = display(df, settings, weights_official)
    out = [f"### {title}", ""]
    if not weights_official:
        out += [f"**{WEIGHTS_WARNING}**", ""]
    out.append("| " + " | ".join(headers) + " |")
    out.append("|" + "|".join("---:" if r else ":---" for r in right) + "|")
    for row in rows:
        out.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    if footnotes:
        out += ["", "Notes:", ""]
        out += [f"{i}. {note}" for i, note in enumerate(footnotes, 1)]
    return "\n".join(out) + "\n"


_TEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "|": r"\textbar{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
}
_TEX_UNICODE = {
    "x̂": r"$\hat{x}$",
    "β": r"$\beta$",
    "τ": r"$\tau$",
    "Σ": r"$\Sigma$",
    "∞": r"$\infty$",
    "²": r"$^2$",
    "‖": r"$\|$",
    "−": r"$-$",
    "↓": r"$\downarrow$",
    "↑": r"$\uparrow$",
    "±": r"$\pm$",
    "·": r"$\cdot$",
    "≥": r"$\geq$",
    "≤": r"$\leq$",
    "≈": r"$\approx$",
    "×": r"$\times$",
    "→": r"$\to$",
    "√": r"$\surd$",
    "–": "--",
    "—": "---",
    "é": r"\'e",
    "ä": r"\"a",
    "⚠": r"\textbf{Warning:}",
}


def tex_escape(text: str) -> str:
    """Escape LaTeX specials and spell the symbols we use so that pdflatex compiles them."""
    text = "".join(_TEX_SPECIAL.get(ch, ch) for ch in text)
    for k, v in _TEX_UNICODE.items():
        text = text.replace(k, v)
    return text


def _tex_cell(cell: str) -> str:
    """A cell; "mean [lo, hi]" puts the interval in small type under the mean (narrow)."""
    if " [" in cell and cell.endswith("]"):
        mean, interval = cell.split(" [", 1)
        return rf"\shortstack[r]{{{tex_escape(mean)}\\{{\tiny[{tex_escape(interval[:-1])}]}}}}"
    return tex_escape(cell)


def _blocks(cols: list[str], max_columns: int) -> list[list[int]]:
    """Column index blocks of at most max_columns, each starting with the identifying ones."""
    ids = [i for i, c in enumerate(cols) if c in ID_COLUMNS]
    rest = [i for i in range(len(cols)) if i not in ids]
    if len(cols) <= max_columns or not rest:
        return [list(range(len(cols)))]
    step = max(1, max_columns - len(ids))
    return [ids + rest[k : k + step] for k in range(0, len(rest), step)]


def to_latex(
    df: pd.DataFrame,
    title: str,
    footnotes: Sequence[str],
    weights_official: bool,
    settings: dict[str, Any] | None = None,
    max_columns: int | None = None,
) -> str:
    """A booktabs table (needs \\usepackage{booktabs,adjustbox}); intervals in small type under
    the mean. More than `max_columns` columns are split into blocks that repeat the
    identifying ones, and a block wider than the line is scaled down to fit it."""
    cols, headers, rows, right = display(df, settings, weights_official)
    max_columns = max_columns or df.attrs.get("tex_max_columns", TEX_MAX_COLUMNS)
    out = [
        "% Written by vaebench.tables.write_table; needs \\usepackage{booktabs,adjustbox}.",
        r"\begin{table}[tbp]",
        r"\centering",
        rf"\caption{{{tex_escape(title)}}}",
        r"\scriptsize",
    ]
    for k, block in enumerate(_blocks(cols, max_columns)):
        if k:
            out.append(r"\par\medskip")
        out += [
            r"\begin{adjustbox}{max width=\linewidth}",
            rf"\begin{{tabular}}{{{''.join('r' if right[i] else 'l' for i in block)}}}",
            r"\toprule",
            " & ".join(tex_escape(headers[i]) for i in block) + r" \\",
            r"\midrule",
        ]
        out += [" & ".join(_tex_cell(row[i]) for i in block) + r" \\" for row in rows]
        out += [r"\bottomrule", r"\end{tabular}", r"\end{adjustbox}"]
    notes = [rf"\textcolor{{red}}{{{tex_escape(WEIGHTS_WARNING)}}}"] if not weights_official else []
    notes += [f"({i}) {tex_escape(n)}" for i, n in enumerate(footnotes, 1)]
    if notes:
        out += [r"\par\smallskip", r"\parbox{\linewidth}{\scriptsize"]
        out += [n + r"\\" for n in notes]
        out.append("}")
    if not weights_official:
        out.insert(1, "% \\textcolor needs \\usepackage{xcolor}.")
    out.append(r"\end{table}")
    return "\n".join(out) + "\n"


# The HTML view's style, every selector scoped under .vb-table: the same fragment reads the
# same standalone, in the report's iframe and embedded in the report's home page.
HTML_STYLE = """
.vb-table { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: #1f2933; max-width: 100%; }
.vb-table .vb-title { font-size: 1.2em; font-weight: 600; margin: 0 0 .6em; }
.vb-table .vb-warning { color: #b91c1c; background: #fef2f2; border: 1px solid #fca5a5;
  border-radius: 4px; padding: .45em .7em; margin: 0 0 .8em; font-weight: 600; }
.vb-table .vb-scroll { overflow-x: auto; max-width: 100%; }
.vb-table table { border-collapse: collapse; margin: 0; font-size: .92em; width: auto;
  font-variant-numeric: tabular-nums; }
.vb-table th, .vb-table td { padding: .35em .65em; border: 0; border-bottom: 1px solid #e5e7eb;
  text-align: left; vertical-align: top; white-space: nowrap; }
.vb-table thead th { border-bottom: 2px solid #4b5563; background: #f3f4f6; font-weight: 600; }
.vb-table tbody tr:nth-child(even) { background: #f9fafb; }
.vb-table tbody tr:hover { background: #eef2ff; }
.vb-table .vb-num { text-align: right; }
.vb-table .vb-ci { display: block; color: #6b7280; font-size: .8em; }
.vb-table .vb-na { color: #9ca3af; font-style: italic; }
.vb-table .vb-notes { margin: .9em 0 0; font-size: .88em; color: #374151; }
.vb-table .vb-notes h2 { font-size: 1em; font-weight: 600; margin: 0 0 .3em; }
.vb-table .vb-notes ol { margin: 0; padding-left: 1.6em; }
.vb-table .vb-notes li { margin: .15em 0; }
"""
HTML_BEGIN, HTML_END = "<!-- vaebench:table -->", "<!-- /vaebench:table -->"


def _html_cell(cell: str) -> str:
    """A cell; the interval of "mean [lo, hi]" in small grey type under the mean (narrow)."""
    if " [" in cell and cell.endswith("]"):
        mean, interval = cell.split(" [", 1)
        return f'{html.escape(mean)}<span class="vb-ci"> [{html.escape(interval)}</span>'
    return html.escape(cell)


def to_html_fragment(
    df: pd.DataFrame,
    title: str,
    footnotes: Sequence[str],
    weights_official: bool,
    settings: dict[str, Any] | None = None,
) -> str:
    """The table as one self-styled <div class="vb-table">: its title, the weights warning, a
    <table> with <thead> and one <tbody> row per table row ("mean [lo, hi]" cells), and the
    numbered notes. Every cell carries its column as data-col (the report's home page shows
    a few columns by it). One line per table row or note: reStructuredText's raw directive,
    which embeds it in the report's home page, refuses lines over 10,000 characters."""
    cols, headers, rows, right = display(df, settings, weights_official)
    num = ["vb-num" if r else "" for r in right]
    esc = html.escape

    def attrs(i: int, cell: str = "") -> str:
        cls = " ".join(c for c in (num[i], "vb-na" if cell == STAND_IN else "") if c)
        return f' data-col="{esc(cols[i])}"' + (f' class="{cls}"' if cls else "")

    head = "".join(f'<th scope="col"{attrs(i)}>{esc(h)}</th>' for i, h in enumerate(headers))
    out = [
        f'<div class="vb-table" data-weights-official="{str(bool(weights_official)).lower()}">',
        "<style>",
        *HTML_STYLE.strip().splitlines(),
        "</style>",
        f'<h1 class="vb-title">{esc(title)}</h1>',
    ]
    if not weights_official:
        out.append(f'<p class="vb-warning" role="alert">{esc(WEIGHTS_WARNING)}</p>')
    out += ['<div class="vb-scroll"><table>', f"<thead><tr>{head}</tr></thead>", "<tbody>"]
    out += [
        "<tr>"
        + "".join(f"<td{attrs(i, c)}>{_html_cell(c)}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    ]
    out += ["</tbody>", "</table></div>"]
    if footnotes:
        out += ['<div class="vb-notes"><h2>Notes</h2><ol>']
        out += [f"<li>{esc(n)}</li>" for n in footnotes]
        out += ["</ol></div>"]
    out.append("</div>")
    return "\n".join(out)


def to_html(
    df: pd.DataFrame,
    title: str,
    footnotes: Sequence[str],
    weights_official: bool,
    settings: dict[str, Any] | None = None,
) -> str:
    """A self-contained, styled HTML page (no scripts, no external files): the fragment of
    `to_html_fragment` between the HTML_BEGIN and HTML_END markers, so that a reader (the
    report's home page) can cut it out."""
    fragment = to_html_fragment(df, title, footnotes, weights_official, settings)
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{html.escape(title)}</title>",
            "<style>body { margin: 1.2rem; background: #fff; }</style>",
            "</head>",
            "<body>",
            HTML_BEGIN,
            fragment,
            HTML_END,
            "</body>",
            "</html>",
            "",
        ]
    )


def to_csv_text(df: pd.DataFrame, weights_official: bool = True) -> str:
    """Plain CSV: a header row and data rows, read back by pandas.read_csv with no options.

    The notes live in the Markdown, LaTeX and Parquet metadata; the weights flag stays in the
    `weights_official` column of every row, so it survives filtering and concatenation.
    """
    data = df if weights_official else mask_stand_in(df)
    return data.to_csv(index=False, lineterminator="\n")


def _metric_columns(df: pd.DataFrame) -> list[str]:
    cols = [metric_base(c) for c in df.columns]
    for k in METRIC_KEYS:
        if k in df:
            cols += [str(v) for v in df[k].dropna().unique()]
    return cols


def write_table(
    df: pd.DataFrame,
    stem: str | Path,
    *,
    title: str,
    footnotes: Sequence[str] = (),
    weights_official: bool,
    settings: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """Write `df` as stem.parquet, stem.csv, stem.md, stem.tex and stem.html, each atomically.

    The data files (Parquet, CSV) get an extra boolean column `weights_official`, so that the
    flag travels with every row. Footnotes are `footnotes`, those the table function attached
    (df.attrs["footnotes"]), those implied by the frame (blank cells, diverged rows) and,
    given `settings` (from the metrics' Parquet metadata), those of the metrics in the table.
    The Parquet metadata holds the title, notes, settings, provenance, `metadata` and the
    table function's df.attrs["table_metadata"]. Returns the written paths by suffix.
    """
    stem = Path(stem)
    notes = list(dict.fromkeys([*footnotes, *df.attrs.get("footnotes", []), *auto_footnotes(df)]))
    if settings:
        present = _metric_columns(df)
        notes += [n for n in settings_footnotes(settings, present) if n not in notes]
    data = df.reset_index(drop=True).copy()
    data.attrs = {}
    data["weights_official"] = bool(weights_official)
    meta = {
        "title": title,
        "footnotes": notes,
        "weights_official": bool(weights_official),
        "settings": settings or {},
        "provenance": provenance(),
        **df.attrs.get("table_metadata", {}),
        **(metadata or {}),
    }
    paths = {s: Path(f"{stem}.{s}") for s in TABLE_FORMATS}
    save_parquet(paths["parquet"], data, meta)
    view = df.reset_index(drop=True)
    texts = {
        "csv": to_csv_text(data, weights_official),
        "md": to_markdown(view, title, notes, weights_official, settings),
        "tex": to_latex(view, title, notes, weights_official, settings),
        "html": to_html(view, title, notes, weights_official, settings),
    }
    for suffix, text in texts.items():
        with atomic_path(paths[suffix], "." + suffix) as tmp:
            tmp.write_text(text, encoding="utf-8")
    return paths
