"""Every loader class of the registry is a LangChain document loader: ``Loader("file.ext").load()`` with a str path,
no options, reads what the registry's own opener reads."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest
from langchain_core.document_loaders import BaseLoader
from pptx import Presentation

from loaders.options import ReadOptions
from loaders.registry import FORMATS
from tests.loaders.legacy_files import ppt
from tests.loaders.ocr_pages import render, text_pdf
from tests.loaders.odf_files import build_odp, build_ods, build_odt
from tests.loaders.office_files import docx_bytes
from tests.loaders.test_epub import book, make_epub
from tests.loaders.test_rtf import rtf

TEXT = "Binary search halves the interval"
LEGACY_DATA = Path(__file__).parent / "legacy_data"


def _pptx(path: Path) -> None:
    presentation = Presentation()
    slide = presentation.slides.add_slide(presentation.slide_layouts[0])
    slide.shapes.title.text = TEXT
    presentation.save(str(path))


def _xlsx(path: Path) -> None:
    workbook = openpyxl.Workbook()
    workbook.active.append(["topic", "note"])
    workbook.active.append(["search", TEXT])
    stream = io.BytesIO()
    workbook.save(stream)
    path.write_bytes(stream.getvalue())


def _notebook(path: Path) -> None:
    cell = {"cell_type": "markdown", "metadata": {}, "source": [TEXT]}
    path.write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))


# A file of each loader class, by the class's name: a class added to the registry needs one here.
SAMPLES: dict[str, tuple[str, Callable[[Path], object]]] = {
    "PdfFileLoader": (".pdf", lambda path: text_pdf(path, [TEXT])),
    "TextFileLoader": (".md", lambda path: path.write_text(f"# {TEXT}\n")),
    "HtmlFileLoader": (".html", lambda path: path.write_text(f"<html><body><p>{TEXT}</p></body></html>")),
    "CodeFileLoader": (".py", lambda path: path.write_text(f"print({TEXT!r})\n")),
    "DocxFileLoader": (".docx", lambda path: path.write_bytes(docx_bytes(TEXT))),
    "PptxFileLoader": (".pptx", _pptx),
    "XlsxFileLoader": (".xlsx", _xlsx),
    "CsvFileLoader": (".csv", lambda path: path.write_text(f"topic,note\nsearch,{TEXT}\n")),
    "EpubFileLoader": (".epub", lambda path: make_epub(path, book())),
    "NotebookFileLoader": (".ipynb", _notebook),
    "ImageFileLoader": (".png", lambda path: render([TEXT]).save(path)),
    "DocFileLoader": (".doc", lambda path: shutil.copy(LEGACY_DATA / "harmless-clean.doc", path)),
    "PptFileLoader": (".ppt", lambda path: path.write_bytes(ppt([(TEXT, ["halves"])]))),
    "CalamineFileLoader": (".ods", lambda path: build_ods(path, {"Sheet1": [["topic", "note"], ["search", TEXT]]})),
    "OdtFileLoader": (".odt", build_odt),
    "OdpFileLoader": (".odp", build_odp),
    "RtfFileLoader": (".rtf", lambda path: path.write_bytes(rtf())),
}


def _loader_classes() -> dict[str, type[BaseLoader]]:
    """The class of the loader the registry opens for each extension (opening a loader reads nothing yet)."""
    classes: dict[str, type[BaseLoader]] = {}
    for ext, fmt in FORMATS.items():
        loader = type(fmt.open(Path("probe" + ext), ReadOptions()))
        classes[loader.__name__] = loader
    return classes


def test_every_loader_class_has_a_sample() -> None:
    assert sorted(_loader_classes()) == sorted(SAMPLES)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_a_loader_takes_a_str_path(name: str, tmp_path: Path) -> None:
    ext, write = SAMPLES[name]
    path = tmp_path / f"sample{ext}"
    write(path)
    loader = _loader_classes()[name]
    docs = loader(str(path)).load()  # type: ignore[call-arg]  # BaseLoader's __init__ takes no path; each loader's does
    expected = list(FORMATS[ext].open(path, ReadOptions()).lazy_load())
    assert docs and [d.page_content for d in docs] == [d.page_content for d in expected]
