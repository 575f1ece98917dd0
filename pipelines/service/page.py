"""The service's browser pages: the search page at ``/``, one static HTML file, told the service's settings, under a
strict CSP; and the helper that tells a page from ``static/`` its settings (the docs page uses it too).

The search page needs no key to load (it holds no data: :mod:`pipelines.service.docs` says why it is public). When
the service has one (``needs_key``), the page asks for it once, keeps it for the tab and sends it as a bearer token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from html import escape
from pathlib import Path
from typing import Any

STATIC = Path(__file__).with_name("static")
PAGE = STATIC / "search.html"


def with_config(template: Path, config: dict[str, Any]) -> str:
    """``template``'s HTML with ``config`` as JSON in place of ``__CONFIG__`` (a ``<meta>`` content: escaped, so no
    value can end the attribute); the page's script reads it from there."""
    return template.read_text(encoding="utf-8").replace("__CONFIG__", escape(json.dumps(config), quote=True))


def _csp_hash(body: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"


def search_page(config: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """The page, told the service's defaults (``k``, ``mode``) and whether it needs a key (``needs_key``), and its
    headers; the CSP allows exactly its own inline script and style, so injected markup could run nothing even if
    some passage text ever reached the DOM as HTML."""
    html = with_config(PAGE, config)
    scripts = " ".join(_csp_hash(s) for s in re.findall(r"<script>(.*?)</script>", html, re.S))
    styles = " ".join(_csp_hash(s) for s in re.findall(r"<style>(.*?)</style>", html, re.S))
    policy = (
        f"default-src 'none'; script-src {scripts}; style-src {styles}; connect-src 'self'; img-src data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    headers = {"Content-Security-Policy": policy, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
    return html.encode("utf-8"), headers
