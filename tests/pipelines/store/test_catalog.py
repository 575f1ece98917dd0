"""The catalog of a store: collections with their chunk counts and the model, dimension and task that built them."""

from __future__ import annotations

import pytest

from pipelines.embeddings import make_embeddings
from pipelines.ingestion.writer import ingest
from pipelines.settings import Settings
from pipelines.store.catalog import CollectionInfo, collections
from pipelines.store.chroma import TASK_KEY, IndexSignature, Store, open_store
from tests.conftest import SAMPLES


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    settings = Settings(store=tmp_path_factory.mktemp("catalog") / "store")
    ingest([SAMPLES], settings, embeddings=make_embeddings(settings), progress=False)
    return open_store(settings)


def test_an_ingested_collection_shows_its_chunks_and_model(store: Store) -> None:
    found = store.existing("default")
    assert found is not None
    assert collections(store) == [CollectionInfo("default", found.count(), "intfloat/multilingual-e5-small", 384, None)]


def test_the_task_recorded_at_ingest_is_shown_and_foreign_collections_have_no_model(store: Store) -> None:
    signature = IndexSignature("Qwen/Qwen3-Embedding-0.6B", 1024, "instruct")
    store.client.create_collection("qwen", metadata={**signature.as_metadata(), TASK_KEY: "查找技术文档"})
    store.client.create_collection("foreign")
    try:
        by_name = {info.name: info for info in collections(store)}
        assert list(by_name) == ["default", "foreign", "qwen"]
        assert by_name["qwen"] == CollectionInfo("qwen", 0, "Qwen/Qwen3-Embedding-0.6B", 1024, "查找技术文档")
        assert by_name["foreign"] == CollectionInfo("foreign", 0, None, None, None)
    finally:
        store.client.delete_collection("qwen")
        store.client.delete_collection("foreign")


def test_a_collection_deleted_while_listing_is_left_out(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "collection_names", lambda: ["default", "gone"])
    assert [info.name for info in collections(store)] == ["default"]
