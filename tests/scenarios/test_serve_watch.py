"""``serve --watch``: one process ingests and serves; 20 clients query while files are created, edited and deleted.

Real everything: the ``qwen-rag serve --watch`` process on an embedded store, the SGLang stand-in (hash vectors) in
its own process, real files and inotify, 20 HTTP clients in threads. No answer may hold an empty passage or one
without its source; each change is searchable by its words within seconds. A second process that tries to write
the same embedded store meanwhile gets one line that says why and what to do.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from testbed.chroma import free_port
from testbed.process import sglang_process

REPO = Path(__file__).resolve().parents[2]
DEADLINE = 30.0  # seconds for one change to show, under load
CLIENTS = 20
BASE = {
    "tea.md": "Green tea is steeped at eighty degrees Celsius for two minutes.",
    "search.md": "Binary search halves a sorted range at every step until it finds the target.",
    "ml.md": "机器学习是一种让计算机从数据中自动学习规律的方法。",
}
QUERIES = ["green tea", "binary search sorted", "机器学习", "zanzibar giraffes", "kilimanjaro glaciers", "target"]


def eventually(check: Callable[[], bool], what: str, within: float = DEADLINE) -> float:
    started = time.monotonic()
    while time.monotonic() - started < within:
        if check():
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"not within {within:.0f} s: {what}")


@pytest.mark.slow
def test_serve_watch_under_twenty_clients(tmp_path: Path) -> None:
    corpus, store = tmp_path / "corpus", tmp_path / "store"
    corpus.mkdir()
    for name, text in BASE.items():
        (corpus / name).write_text(text, encoding="utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1/retrieve"
    with sglang_process(dim=64) as embeddings:
        where = ["--store", str(store), "--embeddings-url", embeddings]
        command = [sys.executable, "-m", "pipelines.cli", "serve", *where, "--port", str(port), "--watch", str(corpus)]
        server = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True)
        try:
            http = httpx.Client(timeout=60)

            def sources(query: str, mode: str = "bm25") -> list[str]:
                assert server.poll() is None, server.communicate()[1]
                try:
                    reply = http.post(url, json={"query": query, "mode": mode, "k": 5})
                except httpx.ConnectError:
                    return []  # still starting
                return [p["source"] for p in reply.json()["results"]] if reply.status_code == 200 else []

            eventually(lambda: "tea.md" in sources("green tea steeped"), "the first ingest is searchable", 120)

            faults: list[str] = []
            answers = [0]
            stop = threading.Event()

            def client(seed: int) -> None:
                rng = random.Random(seed)
                with httpx.Client(timeout=60) as own:
                    while not stop.is_set():
                        mode = rng.choice(["bm25", "hybrid", "dense"])
                        reply = own.post(url, json={"query": rng.choice(QUERIES), "mode": mode, "k": 5})
                        if reply.status_code != 200:
                            faults.append(f"{mode}: HTTP {reply.status_code} {reply.text[:200]}")
                            continue
                        answers[0] += 1
                        for passage in reply.json()["results"]:
                            if not passage["text"].strip() or not passage["source"]:
                                faults.append(f"{mode}: empty or sourceless passage {passage}")

            threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
            for thread in threads:
                thread.start()
            try:
                new = corpus / "new.md"
                new.write_text("Zanzibar giraffes graze near the coast.", encoding="utf-8")
                eventually(lambda: "new.md" in sources("zanzibar giraffes"), "a created file")
                new.write_text("Kilimanjaro glaciers are shrinking.", encoding="utf-8")
                eventually(lambda: "new.md" in sources("kilimanjaro glaciers"), "an edited file's new words")
                assert "new.md" not in sources("zanzibar giraffes")  # the old words went with the edit
                (corpus / "tea.md").unlink()
                eventually(lambda: "tea.md" not in sources("green tea steeped", "dense"), "a deleted file")
                assert "tea.md" not in sources("green tea steeped")

                # A second process writing the same embedded store: refused in one line that says what to do.
                other = tmp_path / "other"
                other.mkdir()
                (other / "x.md").write_text("Another folder.", encoding="utf-8")
                second = subprocess.run(
                    [sys.executable, "-m", "pipelines.cli", "ingest", str(other), *where],
                    cwd=REPO,
                    capture_output=True,
                    text=True,
                    timeout=300,
                )
                assert second.returncode != 0
                lines = second.stderr.strip().splitlines()
                assert len(lines) == 1 and "serve --watch" in lines[0] and str(store) in lines[0], second.stderr
            finally:
                stop.set()
                for thread in threads:
                    thread.join(timeout=120)
            assert not faults, faults[:5]
            assert answers[0] > CLIENTS  # the clients did query throughout
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
