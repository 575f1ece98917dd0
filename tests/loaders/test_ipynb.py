"""Jupyter notebooks: one Document per markdown/code cell, outputs left out, on notebooks written into tmp_path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from loaders.errors import LoadError
from loaders.ipynb import NotebookFileLoader
from loaders.options import ReadOptions
from loaders.registry import read
from loaders.source import SourceFile


def notebook(cells: list[dict[str, Any]], metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": metadata or {}, "cells": cells}


def markdown(source: str | list[str]) -> dict[str, Any]:
    return {"cell_type": "markdown", "metadata": {}, "source": source}


def code(source: str | list[str], outputs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"cell_type": "code", "execution_count": 1, "metadata": {}, "source": source, "outputs": outputs or []}


OUTPUTS = [
    {"output_type": "stream", "name": "stdout", "text": ["OUTPUT: 向量维度 1024\n"]},
    {
        "output_type": "display_data",
        "data": {"text/plain": ["OUTPUT: <Figure>"], "image/png": "iVBORw0KGgo="},
        "metadata": {},
    },
    {"output_type": "error", "ename": "ValueError", "evalue": "OUTPUT", "traceback": ["OUTPUT: traceback"]},
]

CELLS = [
    markdown(["# 嵌入向量入门\n", "\n", "本笔记演示 **Qwen3-Embedding**。\n"]),  # list form, as Jupyter saves it
    code("import numpy as np\n\nvectors = np.ones((2, 1024))\nprint(vectors.shape[1])\n\n", OUTPUTS),
    code(["\n", "   \n"]),  # blank: no Document, but it keeps its number
    {"cell_type": "raw", "metadata": {}, "source": "---\ntitle: front matter\n---"},
    markdown("\n\n## 相似度\n余弦相似度衡量方向。  \n"),
    code(["def cosine(a, b):\n", "    return a @ b\n"]),
]


def write(path: Path, content: object) -> Path:
    path.write_text(content if isinstance(content, str) else json.dumps(content, ensure_ascii=False), "utf-8")
    return path


def load(path: Path) -> list:
    return list(NotebookFileLoader(path, ReadOptions()).lazy_load())


def test_markdown_and_code_cells_without_outputs(tmp_path: Path) -> None:
    meta = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    docs = load(write(tmp_path / "intro.ipynb", notebook(CELLS, meta)))
    texts = [doc.page_content for doc in docs]
    assert texts == [
        "# 嵌入向量入门\n\n本笔记演示 **Qwen3-Embedding**。",
        "import numpy as np\n\nvectors = np.ones((2, 1024))\nprint(vectors.shape[1])",
        "## 相似度\n余弦相似度衡量方向。",
        "def cosine(a, b):\n    return a @ b",
    ]
    assert not any("OUTPUT" in text or "iVBOR" in text or "front matter" in text for text in texts)
    assert [doc.metadata.get("language") for doc in docs] == [None, "python", None, "python"]
    assert [doc.metadata["cell"] for doc in docs] == [1, 2, 5, 6]
    # start_index: the offset of each cell in the cells' texts joined by a blank line.
    joined = "\n\n".join(texts)
    assert [doc.metadata["start_index"] for doc in docs] == [joined.index(text) for text in texts]


@pytest.mark.parametrize(
    ("metadata", "language"),
    [
        ({"kernelspec": {"language": "R"}, "language_info": {"name": "python"}}, "r"),  # kernelspec first
        ({"language_info": {"name": "javascript"}}, "js"),  # as the chunker's `Language` spells it
        ({"kernelspec": {"name": "xcpp17"}, "language_info": {"name": "C++"}}, "cpp"),
        ({}, "python"),
    ],
)
def test_the_kernel_language(tmp_path: Path, metadata: dict[str, Any], language: str) -> None:
    (doc,) = load(write(tmp_path / "k.ipynb", notebook([code("x <- 1")], metadata)))
    assert doc.metadata["language"] == language


def test_nbformat_3_worksheets(tmp_path: Path) -> None:
    old = {
        "nbformat": 3,
        "metadata": {"name": "old"},
        "worksheets": [
            {"cells": [{"cell_type": "heading", "level": 2, "metadata": {}, "source": ["旧格式"]}]},
            {"cells": [{"cell_type": "code", "language": "python", "input": ["print(1)\n"], "outputs": []}]},
        ],
    }
    docs = load(write(tmp_path / "old.ipynb", old))
    assert [(doc.page_content, doc.metadata) for doc in docs] == [
        ("## 旧格式", {"cell": 1, "start_index": 0}),
        ("print(1)", {"cell": 2, "start_index": 8, "language": "python"}),
    ]


@pytest.mark.parametrize(
    ("content", "cause"),
    [
        ('{\n  "cells": [\n    {"cell_type": "code",,}\n  ]\n}', "not a Jupyter notebook: invalid JSON at line 3"),
        ({"metadata": {}}, "not a Jupyter notebook: no cells"),
        ([1, 2], "not a Jupyter notebook: no cells"),
        (notebook([markdown(7)]), "not a Jupyter notebook: cell 1 has a malformed source"),  # type: ignore[arg-type]  # malformed on purpose
        (notebook([markdown(""), code(["  \n"]), markdown([])]), "empty notebook"),
        (notebook([]), "empty notebook"),
        ("", "empty file"),
    ],
    ids=["invalid-json", "no-cells", "not-an-object", "malformed-source", "blank-cells", "no-cell", "empty-file"],
)
def test_what_is_not_a_readable_notebook(tmp_path: Path, content: object, cause: str) -> None:
    with pytest.raises(LoadError) as caught:
        load(write(tmp_path / "bad.ipynb", content))
    assert str(caught.value) == cause


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "gbk.ipynb"
    path.write_bytes(json.dumps(notebook([markdown("中文")]), ensure_ascii=False).encode("gbk"))
    with pytest.raises(LoadError, match=r"^not a Jupyter notebook: not UTF-8 text$"):
        load(path)


def test_read_through_the_registry(tmp_path: Path) -> None:
    path = write(tmp_path / "intro.ipynb", notebook(CELLS))
    docs = list(read(SourceFile(tmp_path, path)))
    assert len(docs) == 4
    meta = docs[1].metadata
    assert (meta["source"], meta["file_type"], meta["cell"], meta["language"]) == (
        "intro.ipynb",
        "notebook",
        2,
        "python",
    )
    assert len(meta["file_hash"]) == 64
    assert all(type(value) in (str, int, float, bool) for doc in docs for value in doc.metadata.values())
