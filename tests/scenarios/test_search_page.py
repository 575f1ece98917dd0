"""The search page and the API docs in a real headless Chromium (Debian's ``chromium``) driven by Playwright, against
real servers, with and without an API key.

Offline as on a closed intranet: every request the browser makes to anywhere but 127.0.0.1 is aborted and fails the
test, and so does any console error (a CSP violation included): the pages fetch nothing from outside the service.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from openpyxl import Workbook
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Route, expect, sync_playwright

from pipelines.embeddings.local import LocalEmbeddings
from pipelines.ingestion.writer import ingest
from pipelines.service.app import create_app
from pipelines.service.run import serve_in_background
from pipelines.settings import Mode, Settings
from tests.conftest import SAMPLES

pytestmark = pytest.mark.slow  # each test drives Chromium through the search page

CHROMIUM = Path("/usr/bin/chromium")
# Everything that would phone home or need a GPU is off: the machine has neither network nor GPU.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVICE_HOST = "127.0.0.1"
KEY = "page-key-31c5"
AI = "什么是人工智能？"
HANDLED = "Failed to load resource: the server responded with a status of 4"
# A passage that would run script if the page ever used innerHTML for passage text.
MARKUP = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script> <b>oolong</b> markup sample\n'
RETRIEVE = "#operations-default-retrieve_v1_retrieve_post"  # Swagger UI's block for POST /v1/retrieve


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    corpus = tmp_path_factory.mktemp("corpus")
    shutil.copytree(SAMPLES, corpus, dirs_exist_ok=True)
    (corpus / "markup.txt").write_text(MARKUP, encoding="utf-8")
    book = Workbook()
    book.active.title = "库存"
    for row in [("item", "count"), ("zebrafish tank", 4), ("axolotl tank", 2)]:
        book.active.append(row)
    book.save(corpus / "stock.xlsx")
    # Dense, whatever the default: the tests below read the mode the page was told.
    settings = Settings(store=tmp_path_factory.mktemp("page") / "store", k=3, mode=Mode.DENSE)
    ingest([corpus], settings, embeddings=LocalEmbeddings(), progress=False)
    return settings


@pytest.fixture(scope="module")
def embeddings() -> LocalEmbeddings:
    return LocalEmbeddings()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: run `apt-get update && apt-get install -y chromium` "
            "(Playwright's own browser download is not used)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def open_url(settings: Settings, embeddings: LocalEmbeddings) -> Iterator[str]:
    with serve_in_background(create_app(settings, api_key=None, embeddings=embeddings), host=SERVICE_HOST) as url:
        yield url


@pytest.fixture(scope="module")
def locked_url(settings: Settings, embeddings: LocalEmbeddings) -> Iterator[str]:
    with serve_in_background(create_app(settings, api_key=KEY, embeddings=embeddings), host=SERVICE_HOST) as url:
        yield url


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page (its own sessionStorage) that fails the test on any console error (a CSP violation included),
    script error, or request to anywhere but the service's host (aborted: the browser is offline)."""
    context = browser.new_context()
    outside: list[str] = []

    def only_the_service(route: Route) -> None:
        if urlsplit(route.request.url).hostname == SERVICE_HOST:
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_service)
    page = context.new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        # Chromium logs every 4xx answer; the page reports those itself (tests below check how).
        if message.type == "error" and not message.text.startswith(HANDLED):
            problems.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    yield page
    context.close()
    assert problems == []
    assert outside == []


def search(page: Page, query: str) -> None:
    page.get_by_label("Query").fill(query)
    page.get_by_label("Query").press("Enter")


def enter_key(page: Page, key: str) -> None:
    page.get_by_label("API key").fill(key)
    page.get_by_label("API key").press("Enter")


# -- the search page ---------------------------------------------------------------------------------------------


def test_a_chinese_query_shows_ml_txt_with_the_terms_highlighted(page: Page, open_url: str) -> None:
    page.goto(open_url + "/")
    expect(page.locator("#k")).to_have_value("3")  # the service's default, told to the page
    expect(page.get_by_label("API key")).to_be_hidden()  # no key, no key form
    search(page, AI)
    first = page.locator("#results > li").first
    expect(first.locator(".source")).to_have_text("ml.txt")
    expect(first.locator(".text")).to_have_text("机器学习是一种让计算机自动学习的方法。")
    expect(first.locator(".text")).to_have_attribute("lang", "zh-CN")
    # "是" is the query word this passage shares; Intl.Segmenter found it in "什么是人工智能".
    expect(first.locator("mark")).to_have_text(["是"])
    expect(page.locator("#results > li")).to_have_count(3)
    expect(page.locator("#status")).to_contain_text("3 results · dense")
    score = float(first.locator(".score").inner_text())
    assert 0 < score <= 1


def test_switching_the_mode_searches_again(page: Page, open_url: str) -> None:
    page.goto(open_url + "/")
    search(page, "binary search 二分查找")
    expect(page.locator("#status")).to_contain_text("· dense ·")
    page.get_by_label("bm25").check()
    expect(page.locator("#status")).to_contain_text("· bm25 ·")
    first = page.locator("#results > li").first
    expect(first.locator(".source")).to_have_text("binary_search.md")
    expect(first.locator("mark").first).to_be_visible()
    # The passage is Chinese only: the Chinese query words are marked, wherever they occur.
    assert set(first.locator("mark").all_inner_texts()) == {"二分", "查找"}
    page.get_by_label("hybrid").check()
    expect(page.locator("#status")).to_contain_text("· hybrid ·")
    expect(first.locator(".source")).to_have_text("binary_search.md")


def test_passage_markup_is_shown_as_text_never_run(page: Page, open_url: str) -> None:
    page.goto(open_url + "/")
    page.locator("#k").fill("1")
    search(page, "oolong markup sample")
    text = page.locator("#results > li .text").first
    expect(text).to_contain_text('<img src=x onerror="window.pwned=1">')
    assert page.locator("#results img, #results script, #results b").count() == 0
    assert page.evaluate("window.pwned") is None
    expect(text.locator("mark")).to_have_text(["oolong", "markup", "sample"])


def test_a_spreadsheet_passage_shows_its_sheet_and_rows(page: Page, open_url: str) -> None:
    page.goto(open_url + "/")
    page.locator("#k").fill("1")
    search(page, "zebrafish axolotl tank")
    meta = page.locator("#results > li .meta").first
    expect(meta.locator(".source")).to_have_text("stock.xlsx")
    expect(meta.locator(".sheet")).to_have_text("sheet 库存")
    expect(meta.locator(".rows")).to_have_text("rows 2–3")
    expect(meta.locator(".page, .section")).to_have_count(0)


def test_each_format_shows_where_its_passage_is(page: Page, open_url: str) -> None:
    """Slides, PDF pages, Word sections and single table rows, from an answer the test gives the page."""
    results = [
        {"source": "deck.pptx", "file_type": "pptx", "page": 2, "title": "目标"},
        {"source": "paper.pdf", "file_type": "pdf", "page": 7},
        {"source": "guide.docx", "file_type": "docx", "section": "安装 > 离线安装"},
        {"source": "prices.csv", "file_type": "csv", "row_start": 5, "row_end": 5},
    ]
    answer = {
        "query": "x",
        "mode": "dense",
        "took_ms": 1.0,
        "results": [{"text": "x", "start_index": 0, "score": 0.5, **r} for r in results],
    }
    page.route("**/v1/retrieve", lambda route: route.fulfill(json=answer))
    page.goto(open_url + "/")
    search(page, "x")
    items = page.locator("#results > li .meta")
    expect(items).to_have_count(4)
    expect(items.nth(0).locator(".page")).to_have_text("slide 2")
    expect(items.nth(1).locator(".page")).to_have_text("p. 7")
    expect(items.nth(2).locator(".section")).to_have_text("§ 安装 > 离线安装")
    expect(items.nth(3).locator(".rows")).to_have_text("row 5")
    expect(page.locator("#results .sheet")).to_have_count(0)


def test_errors_show_on_the_page(page: Page, open_url: str, tmp_path: Path) -> None:
    page.goto(open_url + "/")
    page.locator("#k").fill("500")
    search(page, AI)
    # The browser's own form validation stops it: no request, nothing drawn.
    assert page.locator("#k").evaluate("k => k.validity.rangeOverflow")
    expect(page.locator("#status")).to_have_text("")
    empty = create_app(Settings(store=tmp_path / "empty"), api_key=None, embeddings=LocalEmbeddings())
    with serve_in_background(empty, host=SERVICE_HOST) as url:
        page.goto(url + "/")
        search(page, AI)
        expect(page.locator("#status")).to_have_class("error")
        expect(page.locator("#status")).to_contain_text("run `qwen-rag ingest` first")
        expect(page.locator("#results > li")).to_have_count(0)


# -- with an API key ---------------------------------------------------------------------------------------------


def test_with_a_key_the_page_asks_once_and_sends_it_as_a_bearer_token(page: Page, locked_url: str) -> None:
    sent: list[Request] = []
    page.on("request", lambda request: sent.append(request) if "v1/retrieve" in request.url else None)
    page.goto(locked_url + "/")  # the page itself needs no key: a browser cannot send one on a navigation
    expect(page.locator("#status")).to_have_text("This service needs an API key.")
    expect(page.get_by_label("API key")).to_be_focused()
    enter_key(page, KEY)
    expect(page.get_by_label("API key")).to_be_hidden()
    search(page, AI)
    expect(page.locator("#results > li .source").first).to_have_text("ml.txt")
    # Kept for the tab: a reload does not ask again.
    page.reload()
    expect(page.get_by_label("API key")).to_be_hidden()
    search(page, AI)
    expect(page.locator("#results > li .source").first).to_have_text("ml.txt")
    assert [r.header_value("authorization") for r in sent] == [f"Bearer {KEY}"] * 2
    assert all(KEY not in r.url for r in sent)


def test_a_wrong_key_says_so_and_asks_again(page: Page, locked_url: str) -> None:
    page.goto(locked_url + "/")
    enter_key(page, "not-the-key")
    search(page, AI)
    expect(page.locator("#status")).to_have_class("error")
    expect(page.locator("#status")).to_have_text("The service refused this API key: enter the right one.")
    expect(page.get_by_label("API key")).to_be_visible()
    expect(page.get_by_label("API key")).to_have_value("")
    expect(page.locator("#results > li")).to_have_count(0)
    # The search the key was asked for runs as soon as the right one is given.
    enter_key(page, KEY)
    expect(page.locator("#results > li .source").first).to_have_text("ml.txt")
    expect(page.locator("#status")).not_to_have_class("error")


# -- the API docs ------------------------------------------------------------------------------------------------


def test_the_docs_render_offline(page: Page, open_url: str) -> None:
    page.goto(open_url + "/docs")
    expect(page.locator(RETRIEVE)).to_be_visible()
    expect(page.locator(RETRIEVE)).to_contain_text("/v1/retrieve")
    expect(page.get_by_label("API key")).to_be_hidden()
    expect(page.get_by_role("button", name="Authorize")).to_have_count(0)  # no key, no security scheme


def test_with_a_key_the_docs_ask_for_it_and_try_it_out_sends_it(page: Page, locked_url: str) -> None:
    page.goto(locked_url + "/docs")
    expect(page.locator("#status")).to_have_text("This service needs an API key to show its API.")
    enter_key(page, "not-the-key")
    expect(page.locator("#status")).to_have_text("The service refused this API key: enter the right one.")
    expect(page.locator(RETRIEVE)).to_have_count(0)
    enter_key(page, KEY)
    operation = page.locator(RETRIEVE)
    expect(operation).to_be_visible()
    expect(page.get_by_label("API key")).to_be_hidden()
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()  # the request body is the schema's example: AI, k=2
    expect(operation.locator(".curl")).to_contain_text(f"Authorization: Bearer {KEY}")
    expect(operation.locator(".live-responses-table tbody .response-col_status")).to_have_text("200")
    expect(operation.locator(".live-responses-table tbody .response-col_description")).to_contain_text("ml.txt")


def test_a_key_given_to_the_search_page_serves_the_docs_in_the_same_tab(page: Page, locked_url: str) -> None:
    page.goto(locked_url + "/")
    enter_key(page, KEY)
    page.get_by_role("link", name="API docs").click()
    expect(page.locator(RETRIEVE)).to_be_visible()
    expect(page.get_by_label("API key")).to_be_hidden()
    page.get_by_role("link", name="Search page").click()
    expect(page.get_by_label("API key")).to_be_hidden()
