"""SIGKILL in the middle of a lexical-index update, then a query: the right answer, the index repaired.

An ingest child process edits a file's chunks in Chroma and is killed at a chosen point of the index update: before
the index's commit (the index holds the old text while the collection holds the new), or after the commit but
before the state file that says which marker the index reflects. A fresh process then asks by words."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.retrieve.lexical_sync import index_dir
from pipelines.retrieve.retriever import build_retriever
from pipelines.settings import Settings
from pipelines.store.chroma import Store
from pipelines.store.marker import read
from testbed.process import sglang_process

REPO = Path(__file__).resolve().parents[2]
OLD = "The orchard grows apples and pears along the river bank."
NEW = "The savannah shelters zebras and giraffes near the waterhole."

# The child ingests with one step of the index update that carries the edited text replaced by SIGKILL to itself.
CHILD = """
import os, signal, sys
from pipelines.ingestion.writer import ingest
from pipelines.retrieve import lexical, lexical_sync
from pipelines.settings import Settings

staged = []
put = lexical.LexicalIndex.put_terms

def spy(self, file, chunks):
    chunks = list(chunks)
    staged.extend(terms for _, terms, _, _ in chunks)  # (id, terms, text, metadata)
    put(self, file, chunks)

steps = {"commit": (lexical.LexicalIndex, "commit"), "state": (lexical_sync.LexicalSync, "_save_state")}
owner, name = steps[sys.argv[1]]
step = getattr(owner, name)

def step_or_die(*args, **kwargs):
    if any("zebra" in terms.split() for terms in staged):
        os.kill(os.getpid(), signal.SIGKILL)
    return step(*args, **kwargs)

lexical.LexicalIndex.put_terms = spy
setattr(owner, name, step_or_die)
ingest([sys.argv[2]], Settings(store=sys.argv[3], embeddings_url=[sys.argv[4]]), progress=False)
"""


@pytest.mark.slow
@pytest.mark.parametrize("step", ["commit", "state"])
def test_a_kill_mid_update_is_repaired_before_the_next_search(tmp_path: Path, step: str) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.md").write_text(OLD, encoding="utf-8")
    (corpus / "b.md").write_text("Green tea is steeped at eighty degrees Celsius.", encoding="utf-8")
    store = tmp_path / "store"
    with sglang_process(dim=64) as url:
        settings = Settings(store=store, embeddings_url=[url], mode="bm25", k=3)
        ingest_cmd = [sys.executable, "-m", "pipelines.cli", "ingest", str(corpus), "--store", str(store)]
        done = subprocess.run([*ingest_cmd, "--embeddings-url", url], cwd=REPO, capture_output=True, timeout=300)
        assert done.returncode == 0, done.stderr

        (corpus / "a.md").write_text(NEW, encoding="utf-8")
        killed = subprocess.run(
            [sys.executable, "-c", CHILD, step, str(corpus), str(store), url],
            cwd=REPO,
            capture_output=True,
            timeout=300,
        )
        assert killed.returncode == -9, killed.stderr

        retriever = build_retriever(settings)
        [doc] = retriever.invoke("zebras giraffes savannah")
        assert (doc.metadata["source"], doc.page_content) == ("a.md", NEW)
        assert all(d.page_content != OLD for d in retriever.invoke("apples orchard pears"))
        # Repaired: the state now names the collection's marker.
        marker = read(Store.open(path=store), "default").value
        assert marker is not None
        assert marker in (index_dir(Store.open(path=store), "default") / "synced.json").read_text(encoding="utf-8")
