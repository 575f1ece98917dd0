"""A real MCP client against the real server: the SDK's client starts ``python -m pipelines.service.mcp`` over stdio,
and talks streamable HTTP to ``/mcp`` of the service app (``create_app``, as ``qwen-rag serve`` runs it) behind its
API key, served by uvicorn on 127.0.0.1."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from fastapi import FastAPI
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, ListToolsResult

from pipelines.embeddings import Provider, make_embeddings
from pipelines.ingestion.writer import ingest
from pipelines.service.app import create_app
from pipelines.service.run import serve_in_background
from pipelines.settings import Settings
from tests.conftest import REPO, SAMPLES

AI = "什么是人工智能？"
KEY = "mcp-test-key-5b1e"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = Settings(store=tmp_path_factory.mktemp("mcp-client") / "store")
    ingest([SAMPLES], settings, progress=False)
    return settings


async def session_calls(session: ClientSession) -> tuple[ListToolsResult, CallToolResult, CallToolResult]:
    await session.initialize()
    listed = await session.list_tools()
    found = await session.call_tool("search", {"query": AI, "k": 2})
    failed = await session.call_tool("read", {"source": "missing.md"})
    return listed, found, failed


def check(listed: ListToolsResult, found: CallToolResult, failed: CallToolResult) -> None:
    assert sorted(tool.name for tool in listed.tools) == ["collections", "read", "search"]
    assert not found.is_error and found.structured_content is not None
    passages: list[dict[str, Any]] = found.structured_content["result"]
    assert passages[0]["source"] == "ml.txt" and "机器学习" in passages[0]["text"]
    assert failed.is_error
    assert [c.text for c in failed.content] == [  # type: ignore[union-attr]  # an error is text content
        "Error executing tool read: no file 'missing.md' in collection 'default': use a source as search returns it"
    ]


# -- stdio: what a desktop client does ---------------------------------------------------------------------------


@pytest.mark.slow
def test_a_client_starts_the_server_over_stdio_and_searches(settings: Settings) -> None:
    server = StdioServerParameters(
        command=sys.executable, args=["-m", "pipelines.service.mcp", "--store", str(settings.store)], cwd=REPO
    )

    async def go() -> tuple[ListToolsResult, CallToolResult, CallToolResult]:
        async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
            return await session_calls(session)

    check(*anyio.run(go))


@pytest.mark.slow
def test_qwen_rag_mcp_writes_only_warnings_to_stderr(settings: Settings, tmp_path: Path) -> None:
    # Without its saved lexical index, the first hybrid search builds one: the step whose library logged at DEBUG
    # into the client's log window (bm25s's "Building index from tokens", on a logger it set to DEBUG itself). Its
    # successor, tantivy, logs nothing; jieba, which cuts the Chinese samples, writes "Building prefix dict" through
    # its own stderr handler unless told not to (pipelines.retrieve.segment). The logging set-up itself, which this
    # run no longer exercises, is the next test's.
    shutil.rmtree(settings.store / "lexical", ignore_errors=True)
    command = [
        "-c",
        "from pipelines.cli import main; main()",
        "mcp",
        "--store",
        str(settings.store),
        "--mode",
        "hybrid",
    ]
    server = StdioServerParameters(command=sys.executable, args=command, cwd=REPO)

    async def go() -> CallToolResult:
        async with stdio_client(server, errlog=log) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            return await session.call_tool("search", {"query": "binary search", "k": 1})

    with open(tmp_path / "stderr.txt", "w+", encoding="utf-8") as log:
        found = anyio.run(go)
        log.seek(0)
        stderr = log.read()
    assert not found.is_error and (settings.store / "lexical").is_dir()  # the index was built, by this search
    assert stderr == ""


# What a library logs under `qwen-rag mcp`, through a logger whose level it set itself (bm25s set DEBUG; jieba._compat
# still does): the command's handlers and levels are left in place, so records logged after it returns meet the
# set-up a search's records meet. The SDK's own (rich) set-up would let all three through, over several columns.
LIBRARY_LOGS = """
import logging
import sys

from pipelines.cli import main

library = logging.getLogger("a_library")
library.setLevel(logging.DEBUG)
main(sys.argv[1:], standalone_mode=False)
library.debug("a debug line")
library.info("an info line")
library.warning("a warning")
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("debug", "expected"),
    [
        ([], ["WARNING a_library: a warning"]),
        (
            ["--debug"],
            ["DEBUG a_library: a debug line", "INFO a_library: an info line", "WARNING a_library: a warning"],
        ),
    ],
)
def test_qwen_rag_mcp_lets_only_warnings_through_unless_debug(
    tmp_path: Path, debug: list[str], expected: list[str]
) -> None:
    command = [sys.executable, "-c", LIBRARY_LOGS, *debug, "mcp", "--store", str(tmp_path / "store")]
    # stdin at its end: the client has gone, the server returns.
    done = subprocess.run(command, input="", capture_output=True, text=True, cwd=REPO, timeout=120, check=True)
    assert done.stdout == ""  # the protocol's channel: nothing was asked, nothing is said
    assert [line for line in done.stderr.splitlines() if "a_library" in line] == expected  # one plain line each
    if not debug:
        assert done.stderr == "WARNING a_library: a warning\n"  # and nothing else: no other library's records


# -- streamable HTTP, mounted in a FastAPI service behind its key ------------------------------------------------


@pytest.fixture(scope="module")
def embeddings(settings: Settings) -> Provider:
    return make_embeddings(settings)


def service(settings: Settings, embeddings: Provider, host: str = "127.0.0.1") -> FastAPI:
    """The app ``qwen-rag serve --api-key KEY`` runs, MCP at /mcp included."""
    return create_app(settings, api_key=KEY, embeddings=embeddings, host=host)


@pytest.fixture(scope="module")
def url(settings: Settings, embeddings: Provider) -> Iterator[str]:
    with serve_in_background(service(settings, embeddings)) as base:
        yield f"{base}/mcp"


AUTHORISED = {"Authorization": f"Bearer {KEY}"}
LIST_TOOLS = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}


def test_a_client_with_the_key_searches_over_http(url: str) -> None:
    async def go() -> tuple[ListToolsResult, CallToolResult, CallToolResult]:
        async with (
            httpx2.AsyncClient(headers=AUTHORISED, timeout=60) as http,
            streamable_http_client(url, http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            return await session_calls(session)

    check(*anyio.run(go))


def test_without_the_key_the_endpoint_answers_401(url: str) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = httpx.post(url, json=LIST_TOOLS, headers=headers)
        assert response.status_code == 401 and response.json() == {"detail": "missing or wrong API key"}


def test_the_endpoint_is_mcp_itself_and_answers_plain_json(url: str) -> None:
    response = httpx.post(url, json=LIST_TOOLS, headers=AUTHORISED)  # stateless: no session to open first
    assert response.status_code == 200  # not a 307 to /mcp/
    assert response.headers["content-type"] == "application/json"
    assert sorted(tool["name"] for tool in response.json()["result"]["tools"]) == ["collections", "read", "search"]


def test_on_loopback_a_foreign_host_name_is_refused(settings: Settings, embeddings: Provider, url: str) -> None:
    """DNS rebinding: a web page whose name resolves to 127.0.0.1 must not reach the server through a browser."""
    rebound = {**AUTHORISED, "Host": "attacker.example"}
    assert httpx.post(url, json=LIST_TOOLS, headers=rebound).status_code == 421
    with serve_in_background(service(settings, embeddings, host="0.0.0.0")) as base:  # served for any name: no check
        assert httpx.post(f"{base}/mcp", json=LIST_TOOLS, headers=rebound).status_code == 200
