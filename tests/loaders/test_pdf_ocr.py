"""PdfFileLoader with OCR: image-only, mixed, encrypted and blank PDFs under each OcrMode."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pytest
from langchain_core.documents import Document
from PIL import Image
from pypdf import PdfReader, PdfWriter

from loaders import ocr
from loaders.errors import LoadError
from loaders.options import LayoutMode, OcrMode
from loaders.pdf import PdfFileLoader
from loaders.positions import LINE_BOXES
from tests.loaders.ocr_pages import image_pdf, render, text_pdf

SCANNED = [
    ["第一页：扫描的合同。"],
    ["Page two is in English."],
    ["第三页：光学字符识别。", "Page three ends here."],
]
TEXT_LAYER = ["Real text on page one", "with a second line."]


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return image_pdf(tmp_path_factory.mktemp("scanned") / "scanned.pdf", [render(lines) for lines in SCANNED])


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mixed") / "mixed.pdf"
    return text_pdf(path, TEXT_LAYER, images=[render(SCANNED[1])])


def load(path: Path, ocr_mode: OcrMode, **kwargs: object) -> list[Document]:
    # kwargs: the loader's own keyword arguments (password, on_page_error), passed through untyped
    return list(PdfFileLoader(path, ocr=ocr_mode, **kwargs).lazy_load())  # type: ignore[arg-type]


def test_auto_reads_every_page_of_a_scanned_pdf(scanned: Path) -> None:
    docs = load(scanned, OcrMode.AUTO)  # the layout model reads OCR'd pages too (LayoutMode.AUTO)
    assert [(d.metadata["page"], d.metadata["start_index"], d.metadata["ocr"]) for d in docs] == [
        (n, 0, True) for n in (1, 2, 3)
    ]
    # The OCR's lines go through the text rules: the same words, lines of a paragraph joined.
    assert [re.sub(r"\s+", "", d.page_content) for d in docs] == ["".join("".join(lines).split()) for lines in SCANNED]
    assert "第三页：光学字符识别。" in docs[2].page_content
    for doc in docs:  # and each line keeps its box, in points on the page
        assert all(
            0 <= x0 < x1 <= 612 and 0 <= top < bottom <= 842
            for *_, x0, top, x1, bottom in json.loads(doc.metadata[LINE_BOXES])
        )


def test_never_says_to_turn_ocr_on(scanned: Path) -> None:
    with pytest.raises(LoadError, match=r"^no extractable text \(scanned PDF\? use --ocr auto\)$"):
        load(scanned, OcrMode.NEVER)


def test_auto_reads_only_the_page_without_text(mixed: Path) -> None:
    first, second = load(mixed, OcrMode.AUTO)
    assert first.metadata.keys() == {"page", "start_index", LINE_BOXES}  # the text layer, no "ocr"
    assert (first.metadata["page"], first.metadata["start_index"]) == (1, 0)
    assert first.page_content == " ".join(TEXT_LAYER)  # the lines of a paragraph joined
    assert (second.metadata["page"], second.metadata["start_index"], second.metadata["ocr"]) == (2, 0, True)
    assert second.page_content == SCANNED[1][0]


def test_always_reads_the_text_page_by_ocr_too(mixed: Path) -> None:
    first, second = load(mixed, OcrMode.ALWAYS)
    assert first.metadata == {"page": 1, "start_index": 0, "ocr": True}
    assert first.page_content == "\n".join(TEXT_LAYER)
    assert second.page_content == SCANNED[1][0]


def test_an_encrypted_scan_is_rendered_with_its_password(tmp_path: Path) -> None:
    path = image_pdf(tmp_path / "plain.pdf", [render(SCANNED[1])])
    writer = PdfWriter(clone_from=path)
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="AES-256")
    locked = tmp_path / "locked.pdf"
    writer.write(locked)
    (doc,) = load(locked, OcrMode.AUTO, password="secret")
    assert doc.page_content == SCANNED[1][0]


def test_blank_pages_are_not_worth_ocr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    path = tmp_path / "blank.pdf"
    writer.write(path)
    monkeypatch.setattr(ocr, "recognise_boxes", pytest.fail)  # a blank render never reaches the engine
    with pytest.raises(LoadError, match=r"^no text found, not even by OCR$"):
        load(path, OcrMode.AUTO)


@pytest.fixture
def fake_ocr(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Replaces the engine: each call returns "ocr <n>" and records the rendered size; the third call fails."""
    sizes: list[tuple[int, int]] = []

    def recognise(image: Image.Image) -> list[tuple[tuple[float, float, float, float], str]]:
        sizes.append(image.size)
        if len(sizes) == 3:
            raise RuntimeError("onnxruntime\nfailed")
        return [((10, 10, 200, 40), f"ocr {len(sizes)}")]

    monkeypatch.setattr(ocr, "recognise_boxes", recognise)
    return sizes


def test_a_scrap_of_text_over_an_image_is_ocrd_but_a_short_text_page_is_not(
    tmp_path: Path, fake_ocr: list[tuple[int, int]]
) -> None:
    stamp = text_pdf(tmp_path / "stamp.pdf", ["Page 7"])
    writer = PdfWriter(clone_from=image_pdf(tmp_path / "scan.pdf", [render(["x"])]))
    writer.pages[0].merge_page(PdfReader(stamp).pages[0])  # a scanner's page number in the text layer, over a scan
    writer.append(stamp)  # a page of text only, as short
    path = tmp_path / "stamped.pdf"
    writer.write(path)
    docs = load(path, OcrMode.AUTO, layout=LayoutMode.OFF)
    assert [(d.page_content, d.metadata.get("ocr")) for d in docs] == [("ocr 1", True), ("Page 7", None)]


def test_a_page_whose_ocr_fails_is_handed_over(scanned: Path, fake_ocr: list[tuple[int, int]]) -> None:
    failures: list[LoadError] = []
    docs = load(scanned, OcrMode.AUTO, on_page_error=failures.append, layout=LayoutMode.OFF)
    assert [(d.metadata["page"], d.page_content) for d in docs] == [(1, "ocr 1"), (2, "ocr 2")]
    assert [(f.page, str(f)) for f in failures] == [(3, "OCR failed: onnxruntime failed")]
    # Rendered at 200 dpi: pages saved from images at 200 dpi come back at their pixel size (PDFium rounds up).
    for (width, height), lines in zip(fake_ocr, SCANNED, strict=True):
        expected = render(lines)
        assert (width - expected.width, height - expected.height) in {(0, 0), (0, 1), (1, 0), (1, 1)}


def test_a_poster_is_rendered_no_larger_than_ocr_needs(tmp_path: Path, fake_ocr: list[tuple[int, int]]) -> None:
    image = Image.new("L", (400, 200), 255)
    image.paste(0, (10, 10, 50, 50))  # something on it, or the blank check would skip it
    path = tmp_path / "poster.pdf"
    image.save(path, resolution=2)  # 200 x 100 inches
    load(path, OcrMode.AUTO, layout=LayoutMode.OFF)
    assert max(fake_ocr[0]) in (2 * ocr.MAX_SIDE, 2 * ocr.MAX_SIDE + 1)


@pytest.fixture
def four_scans(tmp_path: Path) -> Path:
    """Four scanned pages told apart by their width: 600, 700, 800 and 900 px."""
    return image_pdf(tmp_path / "four.pdf", [render(["x"], width=width) for width in (600, 700, 800, 900)])


def test_pages_are_read_two_at_a_time_and_come_out_in_order(four_scans: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ocr, "page_workers", lambda: 2)
    second_started = threading.Event()
    lock = threading.Lock()
    running, peak = 0, 0

    def recognise(image: Image.Image) -> list[tuple[tuple[float, float, float, float], str]]:
        nonlocal running, peak
        number = (image.width - 500) // 100
        with lock:
            running += 1
            peak = max(peak, running)
        if number == 2:
            second_started.set()
        if number == 1:  # page 1 finishes only once page 2 is under way: they must overlap
            assert second_started.wait(timeout=30)
        with lock:
            running -= 1
        return [((10, 10, 200, 40), f"page {number}")]

    monkeypatch.setattr(ocr, "recognise_boxes", recognise)
    docs = load(four_scans, OcrMode.AUTO, layout=LayoutMode.OFF)
    assert [(d.metadata["page"], d.page_content) for d in docs] == [(n, f"page {n}") for n in (1, 2, 3, 4)]
    assert peak == 2


def test_stopping_early_leaves_no_ocr_threads_behind(four_scans: Path, fake_ocr: list[tuple[int, int]]) -> None:
    before = threading.active_count()
    pages = PdfFileLoader(four_scans, ocr=OcrMode.AUTO).lazy_load()
    assert next(pages).page_content == "ocr 1"
    pages.close()
    assert threading.active_count() == before
