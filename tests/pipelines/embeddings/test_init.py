"""make_embeddings and the package's import cost: each path loads only its own libraries."""

from __future__ import annotations

import pytest

from pipelines.embeddings import EmbeddingServerError, Provider, make_embeddings
from pipelines.embeddings.local import LocalEmbeddings
from pipelines.errors import EmbeddingServerError as Moved
from pipelines.settings import Settings
from tests.pipelines.embeddings.support import LOCAL_ONLY, SERVER_ONLY, imported_by


def test_no_url_means_the_embedded_default() -> None:
    provider = make_embeddings(Settings())
    assert isinstance(provider, LocalEmbeddings) and isinstance(provider, Provider)


def test_dimensions_need_a_server() -> None:
    with pytest.raises(EmbeddingServerError, match="needs a Qwen3-Embedding server"):
        make_embeddings(Settings(dimensions=128))


def test_the_error_is_qwen_rags() -> None:
    assert EmbeddingServerError is Moved


def test_importing_the_package_loads_no_provider_library() -> None:
    assert imported_by("import pipelines.embeddings") == set()


@pytest.mark.slow
def test_the_embedded_path_never_loads_the_openai_client() -> None:
    code = (
        "from pipelines.embeddings import make_embeddings\n"
        "from pipelines.settings import Settings\n"
        "emb = make_embeddings(Settings())\n"
        "emb.embed_documents(['机器学习']); emb.embed_query('什么是人工智能？')\n"
    )
    assert imported_by(code) == set(LOCAL_ONLY)


@pytest.mark.parametrize("args", [["--help"], ["query", "--help"], ["ingest", "--help"]])
def test_help_loads_no_provider_library(args: list[str]) -> None:
    code = (
        "import sys\n"
        "from pipelines.cli import main\n"
        f"sys.argv = ['qwen-rag', *{args!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
    )
    assert imported_by(code, SERVER_ONLY + LOCAL_ONLY) == set()
