"""loaders.ocr: rendered English and Chinese lines read back exactly, reading order, lazy imports, no download."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import rapidocr
from PIL import Image

from loaders import ocr
from tests.loaders.ocr_pages import render

ENGLISH = "The quick brown fox jumps over the lazy dog."
CHINESE = "检索增强生成把文档切成小块再做向量检索。"


# Exact equality, not a CER bound: a clean 40 px line in a plain font is the easy case (the benchmark reads
# whole pages at 1.0000 accuracy in both languages); a miss here means the engine or its setup is broken.
@pytest.mark.parametrize("line", [ENGLISH, CHINESE], ids=["en", "zh"])
def test_a_rendered_line_is_read_exactly(line: str) -> None:
    assert ocr.recognise(render([line])) == line


def test_lines_come_out_in_reading_order() -> None:
    lines = ["First line of the page", "第二行是中文", "Third line 2024"]
    assert ocr.recognise(render(lines)) == "\n".join(lines)


def test_a_blank_image_has_no_text() -> None:
    assert ocr.recognise(Image.new("L", (600, 400), 255)) == ""


def box(left: float, top: float, right: float, bottom: float) -> list[list[float]]:
    return [[left, top], [right, top], [right, bottom], [left, bottom]]


def test_reading_order_groups_rows_and_joins_their_pieces() -> None:
    # Given shuffled, as a detector may; the second row's pieces are a few pixels off each other (skew).
    boxes = [box(400, 62, 700, 98), box(10, 10, 300, 40), box(10, 60, 300, 96), box(320, 12, 600, 42)]
    texts = ["world", "Hello", "第二行", "there"]
    assert ocr.reading_order(boxes, texts) == "Hello there\n第二行world"
    # Pieces meeting at a CJK character are joined without a space; whitespace-only pieces are dropped.
    boxes = [box(10, 10, 200, 40), box(220, 10, 400, 40), box(10, 60, 200, 90)]
    assert ocr.reading_order(boxes, ["检索增强", "生成。", " "]) == "检索增强生成。"


def test_a_huge_image_is_shrunk_before_detection() -> None:
    prepared = ocr._prepare(Image.new("L", (6000, 3000), 255))
    assert prepared.size == (ocr.MAX_SIDE, ocr.MAX_SIDE // 2)
    assert prepared.mode == "RGB"


def test_a_transparent_background_becomes_white() -> None:
    clear = Image.new("RGBA", (10, 10), (0, 0, 0, 0))  # "transparent black", as many PNG writers store it
    assert ocr._prepare(clear).getpixel((0, 0)) == (255, 255, 255)


def test_a_16_bit_scan_is_stretched_not_clipped() -> None:
    import numpy as np

    # 12-bit data in a 16-bit TIFF: ink at 1000, paper at 4000. Clipped to 8 bits, both would be white.
    pixels = np.full((20, 20), 4000, dtype=np.uint16)
    pixels[5:10, 5:10] = 1000
    prepared = ocr._prepare(Image.fromarray(pixels))
    assert (prepared.getpixel((7, 7)), prepared.getpixel((0, 0))) == ((0, 0, 0), (255, 255, 255))


def test_importing_the_loaders_does_not_import_the_ocr_engine() -> None:
    script = (
        "import sys, loaders.ocr, loaders.pdf, loaders.image, loaders.registry\n"
        "print(sorted(m for m in ('rapidocr', 'onnxruntime', 'cv2', 'pypdfium2') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout == "[]\n"


def test_the_engine_uses_the_models_in_the_wheel_and_downloads_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from rapidocr.utils.download_file import DownloadFile

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("RapidOCR tried to download a model")

    monkeypatch.setattr(DownloadFile, "run", refuse)
    engine = ocr.create_engine(threads=1)
    assert ocr.recognise(render([ENGLISH]), engine) == ENGLISH
    shipped = Path(rapidocr.__file__).parent / "models"
    assert Path(engine.cfg.Det.model_path).parent == shipped
    assert Path(engine.cfg.Rec.model_path).parent == shipped
    assert engine.text_cls is None  # the rotation classifier is never loaded
