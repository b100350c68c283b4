"""HTML pages of the result tables, as the Snakemake report shows them."""

from __future__ import annotations

import pandas as pd

from optreg.report.html import html_pages, table_html


def test_table_page_holds_every_row_and_column_escaped(tmp_path):
    csv = tmp_path / "summary.csv"
    pd.DataFrame({"cell": ["a<b", "c"], "accuracy": [0.123456, float("nan")], "n": [1, 2]}).to_csv(
        csv, index=False
    )
    table_html(csv, tmp_path / "summary.html", "Study x: summary")
    page = (tmp_path / "summary.html").read_text()
    assert page.count("<tr") == 3 and "<th>accuracy</th>" in page
    assert "a&lt;b" in page and "0.1235" in page  # escaped text, 4 significant digits
    assert "2 rows, 3 columns (from summary.csv)" in page
    assert "td:nth-child(1), th:nth-child(1) { text-align: left; }" in page  # text column
    assert "td:nth-child(2)," not in page  # numbers stay right-aligned


def test_pages_are_written_for_the_outputs_that_ask_for_one(tmp_path):
    for name in ("runs", "history"):
        pd.DataFrame({"x": [1]}).to_csv(tmp_path / f"{name}.csv", index=False)
    outputs = {
        "runs": str(tmp_path / "runs.csv"),
        "runs_html": str(tmp_path / "runs.html"),
        "history": str(tmp_path / "history.csv"),
    }
    html_pages(outputs, "Study s")
    assert "<title>Study s: runs</title>" in (tmp_path / "runs.html").read_text()
    assert not (tmp_path / "history.html").exists()
