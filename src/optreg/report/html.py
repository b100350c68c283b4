"""HTML renderings of the result tables, for reading them inside Snakemake's HTML report."""

from __future__ import annotations

import html
import os

import pandas as pd

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1em; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; white-space: nowrap; }
th { background: #f0f0f0; position: sticky; top: 0; }
tbody tr:nth-child(even) { background: #fafafa; }
"""


def table_html(csv_path: str | os.PathLike, html_path: str | os.PathLike, title: str) -> None:
    """Write the CSV table at `csv_path` as a standalone, styled HTML page with a caption."""
    table = pd.read_csv(csv_path)
    body = table.to_html(index=False, na_rep="", float_format=lambda x: f"{x:.4g}", border=0)
    # Text columns read left-aligned, numbers right-aligned (the style's default).
    left = [
        f"td:nth-child({i}), th:nth-child({i}) {{ text-align: left; }}"
        for i, column in enumerate(table.columns, 1)
        if not pd.api.types.is_numeric_dtype(table[column])
    ]
    summary = f"{len(table)} rows, {len(table.columns)} columns (from {os.path.basename(csv_path)})"
    page = (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}{' '.join(left)}</style></head>\n"
        f"<body><h3>{html.escape(title)}</h3><p>{html.escape(summary)}</p>\n{body}\n</body></html>\n"
    )
    with open(html_path, "w", encoding="utf-8") as fh:
        fh.write(page)


def html_pages(outputs: dict, title: str) -> None:
    """Render each output `<name>.csv` that has an output `<name>_html` beside it."""
    for name, path in outputs.items():
        if name.endswith("_html"):
            table = name.removesuffix("_html")
            table_html(outputs[table], path, f"{title}: {table}" if title else table.capitalize())
