"""A user's question about a PDF table, through the CLI with the embedded model: the row comes back under its
header, with where it stands on the page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipelines.cli import main
from testbed.shared import sample_pdfs

NICS = sample_pdfs() / "en_gov_table_nics-background-checks-2015-11.pdf"


@pytest.mark.slow  # about 40 s: the ingest's parser worker, the embedded model and 1,000 table rows' worth
def test_query_finds_the_florida_row_with_its_header(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    runner = CliRunner()
    ingested = runner.invoke(main, ["ingest", str(NICS), "--store", store, "--json"], catch_exceptions=False)
    assert ingested.exit_code == 0 and json.loads(ingested.stdout)["problems"] == []
    found = runner.invoke(
        main, ["query", "Florida handgun", "-k", "3", "--store", store, "--json"], catch_exceptions=False
    )
    assert found.exit_code == 0
    rows = json.loads(found.stdout)
    (florida,) = [row for row in rows if "| Florida | 15,907 | 50,796 |" in row["text"]][:1]
    assert florida["text"].startswith("| State / Territory | Permit | Handgun | Long Gun |")
    assert florida["page"] == 1
    ((page, x0, top, x1, bottom),) = florida["boxes"]
    assert page == 1 and 0 < x0 < x1 <= 1008 and 0 < top < bottom <= 612  # within the landscape page
