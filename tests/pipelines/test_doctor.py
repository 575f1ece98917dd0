"""The doctor's checks against any Provider: one that ranks, one that cannot."""

from __future__ import annotations

from pipelines.doctor import PROBES, examine
from pipelines.embeddings.local import LocalEmbeddings
from pipelines.embeddings.server import ServerEmbeddings
from testbed.sglang import SGLangServer


def test_the_embedded_model_ranks_every_probe() -> None:
    report = examine(LocalEmbeddings())
    assert (report.model, report.dimension, report.context_length) == ("intfloat/multilingual-e5-small", 384, 512)
    assert report.ranking_ok and report.ok and report.notes == []
    assert report.card is None and report.card_ok is None  # e5 has no model-card matrix to compare with
    assert len(report.similarities) == len(PROBES)


def test_a_server_with_meaningless_vectors_fails_both_checks() -> None:
    # The stand-in's default embedder hashes texts to random vectors: it answers, and cannot rank.
    with SGLangServer(served_model_name="Qwen/Qwen3-Embedding-0.6B") as srv:
        report = examine(ServerEmbeddings.connect(srv.url + "/v1"))
    assert (report.dimension, report.context_length) == (1024, 32768)
    assert not report.ranking_ok and report.card_ok is False and not report.ok
    assert any("wrong pooling" in note for note in report.notes)
    assert any("model card" in note for note in report.notes)
