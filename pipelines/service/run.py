"""Running the service: under uvicorn until interrupted (``qwen-rag serve``), or in a background thread for
notebooks and tests.

>>> from pipelines.service.app import create_app
>>> from pipelines.settings import Settings
>>> with serve_in_background(create_app(Settings(), api_key=None)) as url:      # doctest: +SKIP
...     print(url)
http://127.0.0.1:41234
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from pipelines.service.app import create_app
from pipelines.service.hold import serving
from pipelines.service.keys import Keys
from pipelines.settings import Settings

logger = logging.getLogger("pipelines.service.run")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: assume it is reachable from elsewhere


def serve(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: str | None = None,
    keys: Keys | None = None,
    watch: Sequence[Path] = (),
) -> None:
    """Run the service under uvicorn until interrupted (what ``qwen-rag serve`` does); with ``watch``, keep the
    collection in sync with those paths in the same process (``serve --watch``)."""
    if not api_key and not keys and not _is_loopback(host):
        logger.warning("serving on %s without --api-key: anyone who can reach it can read the whole index", host)
    with serving(settings, watch):
        uvicorn.run(create_app(settings, api_key=api_key, keys=keys, host=host), host=host, port=port)


@contextmanager
def serve_in_background(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run ``app`` under uvicorn in a thread and yield its base URL (port 0: a free one); stop it on exit.

    For notebooks (``uvicorn.run`` fails inside Jupyter's running event loop) and tests.
    """
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="qwen-rag-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        # uvicorn exits its thread (SystemExit) when it cannot bind.
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the service did not start on {host}:{port}")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://[{host}]:{bound}" if ":" in host else f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
