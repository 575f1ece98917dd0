"""The search page in a real headless Chromium (Debian's ``chromium``) driven by Playwright, against real servers."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, expect, sync_playwright

from pipelines.embeddings.providers import LocalEmbeddings
from pipelines.ingestion.writer import ingest
from pipelines.service.app import create_app, serve_in_background
from pipelines.settings import Settings
from tests.conftest import SAMPLES

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
KEY = "page-key-31c5"
AI = "什么是人工智能？"
HANDLED = "Failed to load resource: the server responded with a status of 4"
# A passage that would run script if the page ever used innerHTML for passage text.
MARKUP = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script> <b>oolong</b> markup sample\n'


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    corpus = tmp_path_factory.mktemp("corpus")
    shutil.copytree(SAMPLES, corpus, dirs_exist_ok=True)
    (corpus / "markup.txt").write_text(MARKUP, encoding="utf-8")
    settings = Settings(store=tmp_path_factory.mktemp("page") / "store", k=3)
    ingest([corpus], settings, embeddings=LocalEmbeddings(), progress=False)
    return settings


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
def open_url(settings: Settings) -> Iterator[str]:
    with serve_in_background(create_app(settings, api_key=None, embeddings=LocalEmbeddings())) as url:
        yield url


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page that fails the test on any console error (a CSP violation included) or script error."""
    context = browser.new_context()
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


def search(page: Page, query: str) -> None:
    page.get_by_label("Query").fill(query)
    page.get_by_label("Query").press("Enter")


def test_a_chinese_query_shows_ml_txt_with_the_terms_highlighted(page: Page, open_url: str) -> None:
    page.goto(open_url + "/")
    expect(page.locator("#k")).to_have_value("3")  # the service's default, told to the page
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


def test_errors_show_on_the_page(page: Page, open_url: str, tmp_path: Path) -> None:
    page.goto(open_url + "/")
    page.locator("#k").fill("500")
    search(page, AI)
    # The browser's own form validation stops it: no request, nothing drawn.
    assert page.locator("#k").evaluate("k => k.validity.rangeOverflow")
    expect(page.locator("#status")).to_have_text("")
    empty = create_app(Settings(store=tmp_path / "empty"), api_key=None, embeddings=LocalEmbeddings())
    with serve_in_background(empty) as url:
        page.goto(url + "/")
        search(page, AI)
        expect(page.locator("#status")).to_have_class("error")
        expect(page.locator("#status")).to_contain_text("run `qwen-rag ingest` first")
        expect(page.locator("#results > li")).to_have_count(0)


def test_with_an_api_key_the_page_sends_the_key_from_its_field(page: Page, settings: Settings) -> None:
    with serve_in_background(create_app(settings, api_key=KEY, embeddings=LocalEmbeddings())) as url:
        # The page itself needs the key too; a browser cannot add it to a navigation, so the test does.
        def with_key(route: Route) -> None:
            route.continue_(headers={**route.request.headers, "authorization": f"Bearer {KEY}"})

        page.route(url + "/", with_key)
        page.goto(url + "/")
        search(page, AI)
        expect(page.locator("#status")).to_contain_text("needs an API key")
        page.get_by_label("API key").fill(KEY)
        search(page, AI)
        expect(page.locator("#results > li .source").first).to_have_text("ml.txt")
