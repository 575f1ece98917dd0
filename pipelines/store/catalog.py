"""What a store holds: each collection with its chunk count and the model, dimension and task that built it.

One listing for every place that shows it (``qwen-rag stats``, the MCP server's ``collections`` tool), so that
they agree on what "the model of a collection" is: the signature recorded in its metadata at ingest time, not
whatever the current settings would use.

>>> from pipelines.store.catalog import CollectionInfo, collections
>>> from pipelines.store.chroma import Store
>>> collections(Store.open(path="/tmp/qwen-rag-doc-catalog"))                # doctest: +SKIP
[CollectionInfo(name='default', chunks=16, model='intfloat/multilingual-e5-small', dimension=384, task=None)]
>>> CollectionInfo("notes", 0, None, None, None).model is None       # a collection qwen-rag did not build
True
"""

from __future__ import annotations

from dataclasses import dataclass

from chromadb.errors import NotFoundError

from pipelines.store.chroma import TASK_KEY, IndexSignature, Store


@dataclass(frozen=True)
class CollectionInfo:
    """One collection: ``model`` and ``dimension`` are None for a collection qwen-rag did not build."""

    name: str
    chunks: int
    model: str | None
    dimension: int | None
    task: str | None  # the query instruction recorded by ``ingest --task``; None: the model's default


def collections(store: Store) -> list[CollectionInfo]:
    """Every collection in ``store``, by name."""
    infos = []
    for name in store.collection_names():
        try:
            collection = store.client.get_collection(name)
        except NotFoundError:  # deleted since the listing (an `ingest --full` elsewhere): not there any more
            continue
        metadata = collection.metadata or {}
        signature = IndexSignature.from_metadata(metadata)
        task = metadata.get(TASK_KEY)
        infos.append(
            CollectionInfo(
                name=name,
                chunks=collection.count(),
                model=signature.model if signature else None,
                dimension=signature.dimension if signature else None,
                task=str(task) if task else None,
            )
        )
    return infos
