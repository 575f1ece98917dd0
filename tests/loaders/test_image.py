"""ImageFileLoader: PNG, JPEG and multi-frame TIFF read by OCR; blank, corrupt, oversized images and --ocr never."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from loaders.errors import LoadError
from loaders.image import ImageFileLoader
from loaders.options import OcrMode, ReadOptions
from loaders.registry import read
from loaders.source import SourceFile
from tests.loaders.ocr_pages import render

ENGLISH = "Invoice 2024-0173: total 42.50 EUR"
CHINESE = "发票编号：第二〇二四号"


def load(path: Path, **options: object) -> list:
    # options: ReadOptions' own fields, passed through untyped
    return list(ImageFileLoader(path, ReadOptions(**options)).lazy_load())  # type: ignore[arg-type]


def test_png(tmp_path: Path) -> None:
    path = tmp_path / "receipt.png"
    render([ENGLISH]).save(path)
    (doc,) = load(path)
    assert doc.page_content == ENGLISH
    assert doc.metadata == {"start_index": 0, "ocr": True}


def test_jpeg_in_chinese(tmp_path: Path) -> None:
    path = tmp_path / "receipt.jpg"
    render([CHINESE, ENGLISH]).save(path, quality=85)
    (doc,) = load(path)
    assert doc.page_content == f"{CHINESE}\n{ENGLISH}"
    assert doc.metadata["ocr"] is True


def test_a_two_frame_tiff_is_two_pages(tmp_path: Path) -> None:
    path = tmp_path / "scan.tiff"
    first, second = render(["Page one of the scan"]), render(["Page two of the scan"])
    first.save(path, save_all=True, append_images=[second], compression="tiff_lzw")
    docs = load(path)
    assert [(d.metadata["page"], d.page_content) for d in docs] == [
        (1, "Page one of the scan"),
        (2, "Page two of the scan"),
    ]
    assert all(d.metadata["ocr"] is True for d in docs)


def test_a_transparent_png_is_read_on_white(tmp_path: Path) -> None:
    path = tmp_path / "logo.png"
    grey = render([ENGLISH]).convert("L")
    # Black text on a fully transparent black background: only the alpha channel says where the text is.
    transparent = Image.new("RGBA", grey.size, (0, 0, 0, 0))
    transparent.putalpha(grey.point(lambda v: 255 - v))
    transparent.save(path)
    (doc,) = load(path)
    assert doc.page_content == ENGLISH


def test_a_photo_is_turned_upright_by_its_exif_orientation(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera was turned; rotate 90° clockwise to view
    render([ENGLISH]).rotate(90, expand=True).save(path, exif=exif, quality=90)
    (doc,) = load(path)
    assert doc.page_content == ENGLISH


def test_a_blank_image_has_no_text(tmp_path: Path) -> None:
    path = tmp_path / "blank.png"
    Image.new("RGB", (800, 600), "white").save(path)
    with pytest.raises(LoadError, match=r"^no text found in the image \(OCR\)$"):
        load(path)


def test_ocr_never_refuses_images(tmp_path: Path) -> None:
    path = tmp_path / "receipt.png"
    render([ENGLISH]).save(path)
    with pytest.raises(LoadError, match=r"^image file: OCR is off \(--ocr never\)$"):
        load(path, ocr=OcrMode.NEVER)


def test_random_bytes_named_png(tmp_path: Path) -> None:
    path = tmp_path / "random.png"
    path.write_bytes(os.urandom(5000))
    with pytest.raises(LoadError, match=r"^corrupt or unsupported image: not a known image format$"):
        load(path)


def test_a_truncated_png(tmp_path: Path) -> None:
    path = tmp_path / "truncated.png"
    render([ENGLISH]).save(path)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(LoadError, match=r"^corrupt or unsupported image: ") as caught:
        load(path)
    assert str(tmp_path) not in str(caught.value)  # the caller names the file


@pytest.mark.parametrize("limit", [600_000, 200_000], ids=["over the limit", "over twice the limit"])
def test_a_decompression_bomb_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
    path = tmp_path / "bomb.png"
    Image.new("L", (1000, 1000), 255).save(path)  # 1 megapixel, against a lowered limit
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    with pytest.raises(LoadError, match=r"^image too large to decode safely: "):
        load(path)


def test_read_gives_image_documents_their_file_metadata(tmp_path: Path) -> None:
    path = tmp_path / "scans" / "note.webp"
    path.parent.mkdir()
    render([ENGLISH]).save(path, lossless=True)
    (doc,) = read(SourceFile(root=tmp_path, path=path))
    assert doc.page_content == ENGLISH
    assert doc.metadata["file_type"] == "image"
    assert doc.metadata["source"] == "scans/note.webp"
    assert doc.metadata["ocr"] is True
    assert doc.metadata["start_index"] == 0
