"""The ``qwen-rag`` command: a thin layer over the library; every flag is a :class:`Settings` field.

Flags left out fall back to ``QWEN_RAG_<FLAG>`` in the environment, then to the defaults. Errors print one line;
``--debug`` shows the traceback.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import types
import typing
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Any, NoReturn

import click
from pydantic import SecretStr, ValidationError

from loaders.errors import one_line
from pipelines.settings import SEARCH_FIELDS, Settings

Command = Callable[..., Any]


def _click_type(annotation: Any) -> tuple[Any, bool]:
    """The click type for a Settings field, and whether the option repeats (list fields)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _click_type(args[0])
    if origin in (typing.Union, types.UnionType):
        if typing.get_origin(args[0]) is dict:  # an optional mapping is one JSON object (--where)
            return str, False
        return _click_type(args[0])
    if origin is list:
        return _click_type(args[0])[0], True
    if origin is dict:  # fields as repeated KEY=VALUE (--meta, --filter)
        return str, True
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return click.Choice([m.value for m in annotation]), False
    if annotation is SecretStr:
        return str, False
    if annotation is Path:
        return click.Path(path_type=Path), False
    return annotation, False


def settings_options(*names: str) -> Callable[[Command], Command]:
    """Add one ``--flag`` per named Settings field, typed and documented from the field itself."""

    def decorate(command: Command) -> Command:
        for name in reversed(names):
            field = Settings.model_fields[name]
            kind, multiple = _click_type(field.annotation)
            flags = [f"--{name.replace('_', '-')}"] + (["-k"] if name == "k" else [])
            command = click.option(
                *flags,
                name,
                type=kind,
                multiple=multiple,
                default=None,
                help=f"{field.description} [env QWEN_RAG_{name.upper()}]",
            )(command)
        return command

    return decorate


def make_settings(options: dict[str, Any]) -> Settings:
    """Settings from the flags that were given; the rest from the environment and defaults."""
    given = {k: v for k, v in options.items() if v is not None and v != ()}
    fields: dict[str, Any] = {k: list(v) if isinstance(v, tuple) else v for k, v in given.items()}
    return Settings(**fields)


STORE = ("store", "chroma_url", "collection")
EMBEDDINGS = ("embeddings_url", "embeddings_model", "api_key", "task", "dimensions", "batch_size", "timeout")

RETRIEVAL = (*SEARCH_FIELDS, "rerank_url", "rerank_model")


class FriendlyGroup(click.Group):
    """Every error becomes one line on stderr (what, where, what to do); ``--debug`` keeps the traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise  # click's own: usage errors, --help, Ctrl-C
        except Exception as error:
            if ctx.params.get("debug"):
                raise
            click.echo(f"error: {_one_line(error)}", err=True)
            sys.exit(1)


def _one_line(error: Exception) -> str:
    """qwen-rag's errors and file-system errors say all in one line; anything else is named as unexpected."""
    from pipelines.errors import QwenRagError

    if isinstance(error, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in error.errors())
    if isinstance(error, QwenRagError):
        return str(error)
    if isinstance(error, OSError):
        where = f"{error.filename}: " if error.filename else ""
        return f"{where}{one_line(error.strerror or str(error))}"
    return f"unexpected {type(error).__name__}: {one_line(str(error))} (run with --debug for the traceback)"


@click.group(cls=FriendlyGroup)
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def main(debug: bool) -> None:
    """Index your files and search them with Qwen3-Embedding (SGLang) or the embedded offline model."""


#: ``serve --watch PATH`` and ``mcp --watch PATH``: one process ingests and serves (an embedded store is
#: single-process: see pipelines.service.hold).
WATCH = click.option(
    "--watch",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Also keep the collection in sync with this file or folder (repeatable): ingest and serve in one process.",
)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@settings_options(
    *STORE,
    *EMBEDDINGS,
    "concurrency",
    "workers",
    "max_retries",
    "chunk_tokens",
    "chunk_overlap",
    "include",
    "exclude",
    "pdf_password",
    "ocr",
    "layout",
    "file_timeout",
    "meta",
    "on_mismatch",
)
@click.option("--full", is_flag=True, help="Rebuild the collection from scratch.")
@click.option("--strict", is_flag=True, help="Exit non-zero if any file could not be indexed.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@click.option(
    "--watch", "keep_watching", is_flag=True, help="Then keep the collection in sync with the paths (Ctrl-C stops)."
)
def ingest(
    paths: tuple[Path, ...], full: bool, strict: bool, as_json: bool, keep_watching: bool, **options: Any
) -> None:
    """Index files and folders (incremental: unchanged files are not embedded again).

    Examples:

    \b
      qwen-rag ingest data/samples
      qwen-rag ingest ~/docs --exclude "drafts/**" --ocr never --strict
      qwen-rag ingest ~/docs --embeddings-url http://127.0.0.1:30000/v1 --watch
    """
    from pipelines.ingestion.writer import IngestAborted
    from pipelines.ingestion.writer import ingest as run_ingest

    settings = make_settings(options)
    if keep_watching:
        if as_json or strict:
            raise click.UsageError("--watch prints one line per change: it takes neither --json nor --strict")
        _watch(list(paths), settings, full=full)
        return
    try:
        report = run_ingest(list(paths), settings, full=full)
    except IngestAborted as aborted:
        _print_ingest(aborted.report.to_json(), as_json)
        raise
    summary = report.to_json()
    _print_ingest(summary, as_json)
    indexed = report.added + report.updated + report.unchanged
    if indexed == 0:
        click.echo("error: nothing could be indexed", err=True)
        sys.exit(1)
    if strict and report.problems:
        sys.exit(2)


def _watch(paths: list[Path], settings: Settings, *, full: bool) -> None:
    """Ingest, then follow the paths until Ctrl-C or SIGTERM (a service manager's stop): one line per change."""
    import signal
    import threading

    from pipelines.ingestion.watch import watch

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    watch(paths, settings, full=full, stop_event=stop, on_change=lambda line: click.echo(line, err=True))


def _print_ingest(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False))
        return
    s = summary
    click.echo(
        f"{s['files']} files: {s['added']} added, {s['updated']} updated, {s['unchanged']} unchanged, "
        f"{s['deleted']} deleted, {s['failed']} failed" + (f", {s['retagged']} re-tagged" if s["retagged"] else "")
    )
    click.echo(
        f"chunks: {s['chunks_written']} written ({s['chunks_reused']} reused vectors), {s['chunks_deleted']} deleted; "
        f"{s['embedding_requests']} embedding requests; {s['seconds']:.1f} s"
    )
    for p in s["problems"]:
        where = f"{p['source']} (page {p['page']})" if p.get("page") else p["source"]
        click.echo(f"  skipped {where}: {p['cause']}", err=True)


@main.command()
@click.argument("text")
@settings_options(*STORE, *EMBEDDINGS, "k", *RETRIEVAL)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of passages.")
def query(text: str, as_json: bool, **options: Any) -> None:
    """Search the collection; prints ranked passages with source, page and score.

    Examples:

    \b
      qwen-rag query "什么是人工智能？" -k 2 --mode dense
      qwen-rag query "binary search" --source "*.md" --json
      qwen-rag query "报销标准" --file-type pdf --page-from 3 --page-to 10
    """
    from pipelines.embeddings import query_helper
    from pipelines.settings import Mode

    settings = make_settings(options)
    # Before Chroma is imported: a child imports the OpenAI client meanwhile and embeds the query while Chroma
    # loads its index (pipelines.embeddings.ahead).
    helper = query_helper() if settings.embeddings_url and settings.mode is not Mode.BM25 else None
    from pipelines.retrieve.passages import passage, where
    from pipelines.retrieve.search import open_search

    try:
        # A BM25 query needs no embedding server, so it does not ask one (it answers while the server is down).
        search = open_search(settings, lexical_only=settings.mode is Mode.BM25)
        if helper is not None:
            search.embed_ahead(text, helper)
    finally:
        if helper is not None:
            helper.close()
    rows = [passage(d) for d in search.search(text)]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    for rank, row in enumerate(rows, start=1):
        snippet = " ".join(row["text"].split())
        click.echo(f"{rank}. [{row['score']:.4f}] {where(row)}\n   {snippet[:400]}")


@main.command()
@settings_options(*EMBEDDINGS)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def doctor(as_json: bool, **options: Any) -> None:
    """Check the embedding server: model, dimension, context, and that it ranks known pairs right.

    Examples:

    \b
      qwen-rag doctor
      qwen-rag doctor --embeddings-url http://127.0.0.1:30000/v1 --json
    """
    from dataclasses import asdict

    from pipelines.doctor import examine
    from pipelines.embeddings import make_embeddings

    settings = make_settings(options)
    report = examine(make_embeddings(settings))
    if as_json:
        click.echo(json.dumps({**asdict(report), "ok": report.ok}, ensure_ascii=False))
    else:
        click.echo(f"model: {report.model}\ndimension: {report.dimension}\ncontext: {report.context_length} tokens")
        click.echo(f"ranking check: {'ok' if report.ranking_ok else 'FAILED'}")
        if report.card is not None:
            click.echo(f"model card similarities: {report.card} ({'ok' if report.card_ok else 'MISMATCH'})")
        for note in report.notes:
            click.echo(f"  {note}", err=True)
    if not report.ok:
        sys.exit(1)


@main.command()
@settings_options("store", "chroma_url")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def stats(as_json: bool, **options: Any) -> None:
    """Collections in the store with their chunk counts, model and dimension.

    Examples:

    \b
      qwen-rag stats
      qwen-rag stats --chroma-url http://127.0.0.1:8001 --json
    """
    from pipelines.store.catalog import collections
    from pipelines.store.chroma import open_store

    store = open_store(make_settings(options))
    rows = [
        {"collection": c.name, "chunks": c.chunks, "model": c.model, "dimension": c.dimension, "task": c.task}
        for c in collections(store)
    ]
    if as_json:
        click.echo(json.dumps({"store": store.where, "collections": rows}, ensure_ascii=False))
        return
    click.echo(f"store: {store.where}")
    for row in rows:
        click.echo(f"  {row['collection']}: {row['chunks']} chunks, {row['model']} ({row['dimension']} dims)")


@main.command()
@settings_options(*STORE, *(name for name in EMBEDDINGS if name != "api_key"), "k", *RETRIEVAL)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (default: this machine).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--api-key",
    "service_key",
    envvar="QWEN_RAG_SERVICE_KEY",
    default=None,
    help="Require `Authorization: Bearer KEY` on the API and /mcp (the search page and /docs ask for it) "
    "[env QWEN_RAG_SERVICE_KEY].",
)
@click.option(
    "--keys",
    "keys_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help='A TOML or YAML file of keys, each with the collections it may read or "*" (instead of --api-key).',
)
@WATCH
def serve(
    host: str, port: int, service_key: str | None, keys_file: Path | None, watch: tuple[Path, ...], **options: Any
) -> None:
    """Serve POST /v1/retrieve, Dify's External Knowledge API at /retrieval, MCP at /mcp, a search page at / and the
    API docs at /docs (offline).

    The embedding server's own key comes from QWEN_RAG_API_KEY here: --api-key is the service's.

    Examples:

    \b
      qwen-rag serve --store .qwen-rag
      qwen-rag serve --host 0.0.0.0 --port 8080 --api-key "$QWEN_RAG_SERVICE_KEY"
    """
    from pipelines.service.keys import Keys
    from pipelines.service.run import serve as run_service

    if keys_file is not None and service_key:
        raise click.UsageError("give --api-key or --keys, not both")
    keys = Keys.from_file(keys_file) if keys_file is not None else None

    run_service(make_settings(options), host=host, port=port, api_key=service_key, keys=keys, watch=watch)


@main.command()
@settings_options(*STORE, *EMBEDDINGS, "k", *RETRIEVAL)
@WATCH
def mcp(watch: tuple[Path, ...], **options: Any) -> None:
    """Serve the MCP tools search, read and collections over stdio, for chat clients and agents.

    Client configuration: {"mcpServers": {"qwen-rag": {"command": "qwen-rag", "args": ["mcp", "--store", DIR]}}}
    stderr, the client's log window, gets warnings and errors only; with --debug, every record.

    Examples:

    \b
      qwen-rag mcp --store ~/.qwen-rag
      qwen-rag --debug mcp --store ~/.qwen-rag --mode dense
    """
    from pipelines.service.mcp import run_stdio

    run_stdio(make_settings(options), watch=watch, debug=click.get_current_context().find_root().params["debug"])


@main.command(name="eval")
@click.argument("dataset_dir", type=click.Path(path_type=Path))  # checked by the loader: one line if missing
@click.option("--split", default="test", show_default=True, help="Qrels split to score (tune on train/dev/trial).")
@click.option("--modes", default=None, help="Comma-separated modes to compare (default: --mode).")
@click.option("--report-dir", type=click.Path(path_type=Path), default=Path("eval-reports"), show_default=True)
@settings_options(*STORE, *EMBEDDINGS, "concurrency", "chunk_tokens", "chunk_overlap", *RETRIEVAL)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (a list with several modes).")
def evaluate_command(
    dataset_dir: Path, split: str, modes: str | None, report_dir: Path, as_json: bool, **options: Any
) -> None:
    """Score retrieval on a BEIR-layout dataset: nDCG@10, Recall@10/100, MRR@10, latency.

    Examples:

    \b
      qwen-rag eval datasets/scifact --store /tmp/scifact --modes dense,bm25,hybrid
      qwen-rag eval datasets/cmrc2018 --split dev --json
    """
    from pipelines.evaluate.report import markdown_report, svg_plot
    from pipelines.evaluate.run import evaluate
    from pipelines.settings import Mode

    settings = make_settings(options)
    chosen = [Mode(m.strip()) for m in modes.split(",")] if modes else [settings.mode]
    results = evaluate(dataset_dir, split, settings, modes=chosen)
    report_dir.mkdir(parents=True, exist_ok=True)
    stem = report_dir / f"{results[0].dataset}-{split}"
    stem.with_suffix(".md").write_text(markdown_report(results), encoding="utf-8")
    stem.with_suffix(".svg").write_text(svg_plot(results), encoding="utf-8")
    if as_json:
        rows = [r.to_json() for r in results]
        click.echo(json.dumps(rows[0] if len(rows) == 1 else rows, ensure_ascii=False))
        return
    click.echo(markdown_report(results), nl=False)
    click.echo(f"report: {stem.with_suffix('.md')}, plot: {stem.with_suffix('.svg')}", err=True)


@main.command()
@click.argument("queries", nargs=-1)
@click.option("--a", "a_overrides", default="", help="Side A: FIELD=VALUE,... over the shared settings.")
@click.option("--b", "b_overrides", default="", help="Side B: FIELD=VALUE,... over the shared settings.")
@click.option(
    "--dataset",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="A BEIR-layout dataset: score each side on it too.",
)
@click.option("--split", default="test", show_default=True)
@settings_options(*STORE, *EMBEDDINGS, "k", *RETRIEVAL)
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def compare(
    queries: tuple[str, ...],
    a_overrides: str,
    b_overrides: str,
    dataset: Path | None,
    split: str,
    as_json: bool,
    **options: Any,
) -> None:
    """Compare two setups (collections, models or modes) on the same queries, side by side.

    Examples:

    \b
      qwen-rag compare "什么是人工智能？" --a mode=dense --b mode=hybrid
      qwen-rag compare "binary search" "折半查找" --a collection=docs06b --b collection=docs8b --json
    """
    from dataclasses import asdict

    from pipelines.evaluate.compare import compare as run_compare
    from pipelines.evaluate.compare import render, side_settings

    base = make_settings(options)
    a, b = side_settings(base, a_overrides), side_settings(base, b_overrides)
    if not queries and dataset is None:
        raise click.UsageError("give queries, or --dataset to compare on a benchmark")
    labels = (a_overrides or "A", b_overrides or "B")
    result = run_compare(list(queries), a, b, labels=labels, dataset=dataset, split=split)
    if as_json:
        click.echo(json.dumps(asdict(result), ensure_ascii=False, default=str))
        return
    click.echo(render(result), nl=False)


def run() -> NoReturn:
    """The ``qwen-rag`` command: :func:`main`, then an exit that skips the interpreter's teardown.

    Why: by then the command's output is printed and its files are closed (Chroma's and the lexical index's writes
    are committed as they go), and what is left of a process that loaded a large collection is freeing Chroma's
    vector index and some 1,500 modules: 0.3-0.5 s of a one-file re-ingest's 3 s at 100k chunks (docs/benchmarks.md,
    "A collection that grows"). mypy ends the same way. An error that escapes :func:`main` (``--debug``) ends the
    usual way, with its traceback.
    """
    code: object = 0
    try:
        main()  # click ends it with SystemExit, whatever the outcome
    except SystemExit as done:
        code = done.code
    if isinstance(code, str):  # sys.exit("message"), as Python itself would report it
        print(code, file=sys.stderr)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a reader gone (`| head`), a stream closed
            stream.flush()
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)


if __name__ == "__main__":
    run()
