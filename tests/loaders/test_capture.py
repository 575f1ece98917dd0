"""Parser warnings during read(): lost content to the file's problem report, the rest to the debug log, none
left to reach stderr. openpyxl's real warning for a workbook without a stylesheet; a loss warning from a format
registered by the test, as Pillow words its own ("image file is truncated")."""

from __future__ import annotations

import logging
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document
from openpyxl import Workbook

from loaders.errors import LoadError
from loaders.options import ReadOptions
from loaders.registry import FORMATS, Format, read
from loaders.source import SourceFile

LOSS = "image file is truncated (40 bytes not processed)"


def workbook_without_stylesheet(path: Path) -> None:
    """A workbook whose styles part is empty: openpyxl warns "Workbook contains no stylesheet" when it opens it
    (as it does for files some generators write), and reads the cells all the same."""
    draft = path.with_suffix(".draft.xlsx")
    workbook = Workbook()
    workbook.active.append(["订单号", "客户"])
    workbook.active.append(["SO-0001", "西门吹雪"])
    workbook.save(draft)
    with zipfile.ZipFile(draft) as source, zipfile.ZipFile(path, "w") as out:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "xl/styles.xml":
                data = b'<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"/>'
            out.writestr(info, data)
    draft.unlink()


class _LossyLoader(BaseLoader):
    """Warns as a parser does when it gave up on part of the file, then fails if the file says so."""

    def __init__(self, path: Path, options: ReadOptions) -> None:
        self.path = path

    def lazy_load(self) -> Iterator[Document]:
        yield Document(page_content="第一页", metadata={"start_index": 0})
        warnings.warn(LOSS, UserWarning, stacklevel=1)
        if self.path.read_text() == "fail":
            raise LoadError("corrupt file")
        yield Document(page_content="第二页", metadata={"start_index": 4})


def _lossy(path: Path, options: ReadOptions) -> BaseLoader:
    return _LossyLoader(path, options)


@pytest.fixture
def lossy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setitem(FORMATS, ".lossy", Format("test", _lossy))
    path = tmp_path / "扫描.lossy"
    path.write_text("ok")
    return path


def test_a_warning_of_lost_content_is_a_problem_of_the_file(lossy: Path) -> None:
    errors: list[LoadError] = []
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        docs = list(read(SourceFile(root=lossy.parent, path=lossy), on_page_error=errors.append))
    assert [doc.page_content for doc in docs] == ["第一页", "第二页"]
    assert [(error.cause, error.page) for error in errors] == [
        (f"part of the file could not be read (test_capture: {LOSS})", None)
    ]
    assert escaped == []


def test_one_raised_before_a_failure_is_reported_too(lossy: Path) -> None:
    lossy.write_text("fail")
    errors: list[LoadError] = []
    with pytest.raises(LoadError, match=r"^corrupt file$"):
        list(read(SourceFile(root=lossy.parent, path=lossy), on_page_error=errors.append))
    assert len(errors) == 1


def test_without_a_handler_the_loss_is_logged_as_a_warning(lossy: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="loaders.registry"):
        list(read(SourceFile(root=lossy.parent, path=lossy)))
    assert caplog.messages == [f"扫描.lossy: part of the file could not be read (test_capture: {LOSS})"]


def test_other_warnings_go_to_the_debug_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "订单.xlsx"
    workbook_without_stylesheet(path)
    errors: list[LoadError] = []
    with caplog.at_level(logging.DEBUG, logger="loaders.capture"), warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        (doc,) = read(SourceFile(root=tmp_path, path=path), on_page_error=errors.append)
    assert "西门吹雪" in doc.page_content
    assert errors == [] and escaped == []
    assert "订单.xlsx: openpyxl UserWarning: Workbook contains no stylesheet, using openpyxl's defaults" in (
        caplog.messages
    )
