"""The search page as the service sends it: its config, its CSP, and that it loads without the key."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from html import unescape
from pathlib import Path

from fastapi.testclient import TestClient

from pipelines.service.app import create_app
from pipelines.service.page import search_page, with_config
from pipelines.settings import Settings

CONFIG = {"k": 3, "mode": "dense", "needs_key": True}


def config_of(html: str) -> dict:
    found = re.search(r'<meta name="qwen-rag-config" content="([^"]*)">', html)
    assert found, "no config in the page"
    return json.loads(unescape(found[1]))


def sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_the_page_is_told_its_config() -> None:
    html, _ = search_page(CONFIG)
    assert config_of(html.decode()) == CONFIG


def test_the_csp_allows_exactly_the_pages_own_script_and_style() -> None:
    html, headers = search_page(CONFIG)
    [script] = re.findall(r"<script>(.*?)</script>", html.decode(), re.S)
    [style] = re.findall(r"<style>(.*?)</style>", html.decode(), re.S)
    policy = headers["Content-Security-Policy"]
    assert f"script-src {sha256(script)};" in policy and f"style-src {sha256(style)};" in policy
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy and "unsafe" not in policy


def test_no_config_value_can_end_its_attribute(tmp_path: Path) -> None:
    template = tmp_path / "page.html"
    template.write_text('<meta name="qwen-rag-config" content="__CONFIG__">', encoding="utf-8")
    hostile = {"mode": '"><script>alert(1)</script>'}
    html = with_config(template, hostile)
    assert "<script>" not in html and config_of(html) == hostile


def test_the_page_needs_no_key_to_load_and_knows_whether_searches_do(tmp_path: Path) -> None:
    settings = Settings(store=tmp_path / "store", k=3)
    locked = TestClient(create_app(settings, api_key="page-key"))
    response = locked.get("/")
    assert response.status_code == 200 and config_of(response.text)["needs_key"] is True
    assert locked.post("/v1/retrieve", json={"query": "x"}).status_code == 401
    assert config_of(TestClient(create_app(settings, api_key=None)).get("/").text)["needs_key"] is False
