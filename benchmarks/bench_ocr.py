"""OCR accuracy and speed: pages rendered from known Chinese and English text, read back with RapidOCR.

Each language's paragraphs are typeset on A4 pages at 200 dpi (11 pt, a CJK font for Chinese), then read three
ways: as images (``loaders.ocr.recognise``), as an image-only PDF (``PdfFileLoader``, which renders each page with
pypdfium2 first), and, for the parallelism question, one page at a time with 1 or 2 onnxruntime threads against
two pages at a time in two threads or two processes. Accuracy is 1 - CER: the Levenshtein distance over
characters, whitespace removed (OCR's line breaks and spaces between CJK pieces are not errors), divided by the
length of the text.

    python -m benchmarks.bench_ocr            # 3 to 10 minutes on 2 shared cores
    python -m benchmarks.bench_ocr --rounds 1

The CPU is shared: the load average is printed beside the figures, CPU seconds beside wall seconds, and for the
parallelism runs how many cores' worth of CPU other processes took meanwhile (from /proc/stat); its table gives
each configuration's quietest run. Needs a CJK font: ``fonts-wqy-microhei``.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from loaders import ocr
from loaders.options import OcrMode
from loaders.pdf import PdfFileLoader

if TYPE_CHECKING:
    from rapidocr import RapidOCR

T = TypeVar("T")

DPI = 200
A4 = (round(210 / 25.4 * DPI), round(297 / 25.4 * DPI))
MARGIN = DPI  # one inch
POINTS = 11
LATIN_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf"

EN = [
    "Retrieval augmented generation pairs a language model with a search step. Before the model answers, the "
    "system looks up passages that are likely to contain the facts it needs, and places them in the prompt. The "
    "answer can then quote its sources, and the knowledge can be updated without training the model again.",
    "Documents arrive in many formats. Plain text and Markdown are easy, but office files, web pages and PDF "
    "reports each need their own reader. A scanned contract or a photographed receipt has no text layer at all, "
    "so its words must be recognised from the pixels before anything else can happen.",
    "Optical character recognition works in two stages. A detector finds the regions of the page that contain "
    "text, and a recogniser reads each region as a sequence of characters. Both stages are small neural networks "
    "that run on an ordinary processor in a few seconds per page.",
    "Once the text is extracted, it is split into chunks of a few hundred tokens. Each chunk keeps a note of "
    "where it came from: the file, the page, and the offset within the page. These notes let a reader jump from "
    "an answer back to the exact place in the original document.",
    "The chunks are turned into vectors by an embedding model and stored in an index. At query time the question "
    "is embedded the same way, and the nearest chunks are returned. A lexical index built with BM25 catches rare "
    "names and numbers, such as invoice 2024-0173 or section 4.2(b), that vectors tend to miss.",
    "Quality is measured on held out questions with known answers. Recall at ten tells how often the right "
    "passage is among the first ten results, and the mean reciprocal rank rewards putting it near the top. Both "
    "numbers are tracked after every change to the pipeline.",
    "A good ingestion tool explains what it could not read. A password protected file, a corrupt image or a page "
    "that fails to render is reported with its name and a short cause, while the rest of the collection is "
    "indexed as usual, so one bad file never stops a run of ten thousand.",
    "Speed matters as much as accuracy when a whole archive is scanned. Rendering a page takes a few hundredths "
    "of a second, but reading it takes seconds, so the machine's cores should be kept busy and no page should "
    "be read twice.",
]
ZH = [
    "检索增强生成把大语言模型与检索步骤结合起来。在模型回答之前，系统先查找可能包含所需事实的段落，并把它们放进提示词"
    "中。这样回答可以引用来源，知识也可以随时更新，而不必重新训练模型。",
    "文档的格式多种多样。纯文本和标记语言文件容易处理，但办公文档、网页和报告都需要各自的读取器。扫描的合同或拍摄的"
    "收据根本没有文字层，必须先从像素中识别出文字，后续步骤才能进行。",
    "光学字符识别分为两个阶段。检测器找出页面上包含文字的区域，识别器再把每个区域读成一串字符。两个阶段都是小型神经"
    "网络，在普通处理器上每页只需几秒钟。",
    "文字提取出来以后，会被切分成几百个词元的小块。每个小块都记录自己的出处，包括文件、页码以及在页面中的位置。有了"
    "这些记录，读者可以从答案直接跳回原始文档中的准确位置。",
    "这些小块由嵌入模型转换成向量，并存入索引。查询时，问题以同样的方式转换成向量，系统返回距离最近的小块。基于词频"
    "的索引能够补充向量检索，找回罕见的人名和数字，例如第2024-0173号发票。",
    "检索质量用一组已知答案的问题来衡量。前十召回率表示正确段落出现在前十个结果中的比例，平均倒数排名则奖励把它排在"
    "更靠前的位置。每次修改流程之后，都要重新计算这两个指标。",
    "好的导入工具会说明它读不了什么。设有密码的文件、损坏的图片或者无法渲染的页面，都会连同文件名和简短的原因一起报"
    "告，其余的文件照常编入索引，一个坏文件不会让上万个文件的任务中断。",
    "扫描整个档案时，速度和准确率同样重要。渲染一页只需几十毫秒，识别一页却要几秒钟，所以要让处理器的每个核心都忙起"
    "来，并且同一页不要读两遍。",
]


def cjk_font() -> str:
    """The path of a font with Chinese glyphs, from fontconfig."""
    try:
        found = subprocess.run(["fc-list", ":lang=zh", "file"], capture_output=True, text=True, check=False).stdout
    except FileNotFoundError:  # no fontconfig at all
        found = ""
    paths = sorted(line.split(":")[0] for line in found.splitlines() if line.strip())
    if not paths:
        raise SystemExit("no CJK font: apt-get install -y fonts-wqy-microhei")
    return paths[0]


def typeset(paragraphs: Sequence[str], font_path: str, cjk: bool) -> list[tuple[Image.Image, str]]:
    """`paragraphs` on as many A4 pages as they need: (page image, the text on it with its line breaks)."""
    font = ImageFont.truetype(font_path, round(POINTS / 72 * DPI))
    pitch = round(POINTS / 72 * DPI * 1.4)
    width = A4[0] - 2 * MARGIN
    pages: list[tuple[Image.Image, list[str]]] = []
    y = A4[1]
    for paragraph in paragraphs:
        for line in wrap(paragraph, font, width, cjk):
            if y + pitch > A4[1] - MARGIN:
                pages.append((Image.new("L", A4, 255), []))
                y = MARGIN
            image, lines = pages[-1]
            ImageDraw.Draw(image).text((MARGIN, y), line, font=font, fill=0)
            lines.append(line)
            y += pitch
        y += pitch // 2
    return [(image, "\n".join(lines)) for image, lines in pages]


def wrap(paragraph: str, font: ImageFont.FreeTypeFont, width: int, cjk: bool) -> list[str]:
    """Greedy line breaking: at any character for Chinese, at spaces for English."""
    units, sep = (list(paragraph), "") if cjk else (paragraph.split(" "), " ")
    lines = [units[0]]
    for unit in units[1:]:
        if font.getlength(lines[-1] + sep + unit) <= width:
            lines[-1] += sep + unit
        else:
            lines.append(unit)
    return lines


def levenshtein(a: str, b: str) -> int:
    """Edit distance, one numpy row at a time (insertions resolved with a running minimum)."""
    if not a or not b:
        return len(a) or len(b)
    codes = np.array([ord(c) for c in b])
    columns = np.arange(len(b) + 1)
    row = columns.copy()
    for i, char in enumerate(a, 1):
        best = np.minimum(row[1:] + 1, row[:-1] + (codes != ord(char)))  # deletion, substitution
        best = np.concatenate(([i], best))
        row = np.minimum.accumulate(best - columns) + columns  # insertion: best[k] + (j - k)
    return int(row[-1])


def accuracy(truth: str, found: str) -> float:
    """1 - CER over characters, whitespace removed."""
    truth, found = "".join(truth.split()), "".join(found.split())
    return 1 - levenshtein(truth, found) / len(truth)


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def timed(run: Callable[[], T]) -> tuple[T, float, float]:
    """What `run` returns, and its wall and CPU seconds (all threads of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = run()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def degrade(image: Image.Image, seed: int) -> Image.Image:
    """A poorer scan of `image`: skewed 0.6°, slightly blurred, with sensor noise, saved as JPEG at quality 60."""
    skewed = image.rotate(0.6, resample=Image.Resampling.BICUBIC, fillcolor=255)
    pixels = np.asarray(skewed.filter(ImageFilter.GaussianBlur(0.8)), dtype=np.float32)
    pixels += np.random.default_rng(seed).normal(0, 12, pixels.shape)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=60)
    return Image.open(io.BytesIO(buffer.getvalue()))


def bench_images(pages: dict[str, list[tuple[Image.Image, str]]]) -> None:
    print("\n### Images (loaders.ocr.recognise, one page at a time)\n")
    print("| language | scan | pages | characters | accuracy (1 - CER) | s/page wall | CPU s/page |")
    print("|---|---|---|---|---|---|---|")
    for scan in ("clean", "degraded"):
        for language, typeset_pages in pages.items():
            images = [image for image, _ in typeset_pages]
            if scan == "degraded":
                images = [degrade(image, seed) for seed, image in enumerate(images)]
            found, wall, cpu = timed(lambda images=images: [ocr.recognise(image) for image in images])
            truth = "".join(text for _, text in typeset_pages)
            n = len(images)
            score = accuracy(truth, "".join(found))
            chars = len("".join(truth.split()))
            print(f"| {language} | {scan} | {n} | {chars} | {score:.4f} | {wall / n:.2f} | {cpu / n:.2f} |")
    print(f"\n{load()}")


def bench_pdf(pages: dict[str, list[tuple[Image.Image, str]]]) -> None:
    images = [image for language_pages in pages.values() for image, _ in language_pages]
    truths = [text for language_pages in pages.values() for _, text in language_pages]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scanned.pdf"
        images[0].save(path, save_all=True, append_images=images[1:], resolution=DPI)
        loader = PdfFileLoader(path, ocr=OcrMode.AUTO)
        docs, wall, cpu = timed(lambda: [doc.page_content for doc in loader.lazy_load()])
    scores = ", ".join(f"{accuracy(t, d):.4f}" for t, d in zip(truths, docs, strict=True))
    n = len(images)
    print(f"\n### Image-only PDF ({n} pages, JPEG inside; PdfFileLoader with --ocr auto)\n")
    print(f"- accuracy per page: {scores}")
    print(f"- {wall / n:.2f} s/page wall, {cpu / n:.2f} s/page CPU (render + OCR); {load()}")


_worker_engine: RapidOCR | None = None


def _worker_init(threads: int) -> None:
    global _worker_engine
    _worker_engine = ocr.create_engine(threads)


def _worker_read(image: Image.Image) -> float:
    """Reads `image` in a worker process; returns the CPU seconds it took there."""
    start = time.process_time()
    ocr.recognise(image, _worker_engine)
    return time.process_time() - start


def busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (all processes, all cores), from /proc/stat."""
    with open("/proc/stat") as stat:
        ticks = [int(v) for v in stat.readline().split()[1:9]]
    del ticks[3:5]  # idle, iowait; what is left: user, nice, system, irq, softirq, steal (guest is within user)
    return sum(ticks) / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    wall: float  # seconds per page
    cpu: float  # CPU seconds per page, ours (this process and its workers)
    others: float  # cores' worth of CPU that other processes used meanwhile


def bench_parallel(images: list[Image.Image], rounds: int) -> None:
    """One page at a time on 1 or 2 onnxruntime threads, against two pages at a time (threads, processes)."""
    n = len(images)
    print(f"\n### Parallelism ({n} pages per round, {rounds} rounds interleaved, {os.cpu_count()} cores)\n")
    single, double = ocr.create_engine(1), ocr.create_engine(2)
    for engine in (single, double):
        ocr.recognise(images[0], engine)  # load the models and warm the sessions up
    # Workers are spawned, not forked: a fork of a process that runs onnxruntime's thread pool can deadlock.
    spawn = multiprocessing.get_context("spawn")
    with (
        ProcessPoolExecutor(2, mp_context=spawn, initializer=_worker_init, initargs=(1,)) as processes,
        ThreadPoolExecutor(2) as threads,
    ):
        list(processes.map(_worker_read, images[:2]))  # start and warm both workers

        def in_workers() -> float:
            return sum(processes.map(_worker_read, images))

        configs: dict[str, Callable[[], object]] = {
            "1 page at a time, 1 onnxruntime thread": lambda: [ocr.recognise(i, single) for i in images],
            "1 page at a time, 2 onnxruntime threads": lambda: [ocr.recognise(i, double) for i in images],
            "2 pages at a time in 2 threads, 1 onnxruntime thread each (PdfFileLoader)": lambda: list(
                threads.map(lambda i: ocr.recognise(i, single), images)
            ),
            "2 pages at a time in 2 processes, 1 onnxruntime thread each": in_workers,
        }
        runs: dict[str, list[Run]] = {name: [] for name in configs}
        for _ in range(rounds):
            for name, measure in configs.items():
                busy = busy_seconds()
                result, wall, cpu = timed(measure)
                cpu += result if isinstance(result, float) else 0.0  # the workers' CPU time
                run = Run(wall / n, cpu / n, (busy_seconds() - busy - cpu) / wall)
                runs[name].append(run)
                print(f"  {name}: {run.wall:.2f} s/page, {run.cpu:.2f} CPU s/page, others {run.others:.1f} cores")
    print("\n| configuration | s/page wall (quietest run) | others' load then (cores) | CPU s/page (median) |")
    print("|---|---|---|---|")
    for name, measured in runs.items():
        quietest = min(measured, key=lambda r: r.others)
        cpu = float(np.median([r.cpu for r in measured]))
        print(f"| {name} | {quietest.wall:.2f} | {quietest.others:.1f} | {cpu:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the parallelism comparison")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, {load()} at start")
    pages = {"en": typeset(EN, LATIN_FONT, cjk=False), "zh": typeset(ZH, cjk_font(), cjk=True)}
    start = time.perf_counter()
    ocr.engine()
    print(f"engine created in {time.perf_counter() - start:.2f} s; {ocr.page_workers()} pages at a time in PDFs")
    bench_images(pages)
    bench_pdf(pages)
    images = [image for language_pages in pages.values() for image, _ in language_pages] * 2
    bench_parallel(images, args.rounds)
    print(f"\n{load()} at end")


if __name__ == "__main__":
    main()
