"""The API docs at ``/docs``: Swagger UI's files served by the service itself, which of them need the key, and the
bearer scheme in the spec (the browser side is in tests/scenarios/test_search_page.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from pipelines.service.app import create_app
from pipelines.service.docs import ASSETS
from pipelines.settings import Settings

KEY = "docs-key-5b1e"
TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("docs") / "store"  # never opened: no test here searches


@pytest.fixture(scope="module")
def open_client(store: Path) -> TestClient:
    return TestClient(create_app(Settings(store=store), api_key=None))


@pytest.fixture(scope="module")
def locked_client(store: Path) -> TestClient:
    return TestClient(create_app(Settings(store=store), api_key=KEY))


def linked(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]*)"', html)


def test_the_docs_and_every_file_they_load_come_from_the_service(open_client: TestClient) -> None:
    response = open_client.get("/docs")
    assert response.status_code == 200 and response.headers["content-type"] == "text/html; charset=utf-8"
    links = linked(response.text)
    # Relative, each one: nothing from a CDN, and the service may sit under a proxy's prefix.
    assert links and all(not re.match(r"[a-z]+:|/", link) for link in links), links
    for link in links:
        if link == "./":
            continue  # the link to the search page
        asset = open_client.get(f"/{link}")
        assert asset.status_code == 200, link
        assert asset.headers["content-type"].startswith(TYPES[Path(link).suffix]), link
    assert "SwaggerUIBundle" in open_client.get("/docs/static/swagger-ui-bundle.js").text


def test_the_docs_page_may_load_only_from_the_service(open_client: TestClient) -> None:
    policy = open_client.get("/docs").headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self';" in policy and "connect-src 'self'" in policy
    assert "unsafe" not in policy and "http" not in policy


def test_only_the_listed_files_are_served_and_redoc_is_not(open_client: TestClient) -> None:
    assert set(ASSETS) == {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png", "docs.js", "docs.css"}
    for path in ["/docs/static/redoc.standalone.js", "/docs/static/docs.html", "/docs/static/", "/redoc"]:
        assert open_client.get(path).status_code == 404, path
    assert open_client.get("/docs/static/..%2Fpage.py").status_code == 404


def test_with_a_key_the_docs_and_their_files_are_public_the_spec_and_api_are_not(locked_client: TestClient) -> None:
    shell = locked_client.get("/docs")
    assert shell.status_code == 200
    assert "{&quot;needs_key&quot;: true, &quot;openapi_url&quot;: &quot;openapi.json&quot;}" in shell.text
    for name in ASSETS:
        assert locked_client.get(f"/docs/static/{name}").status_code == 200, name
    for path in ["/openapi.json", "/docs/static/unknown.js", "/docs/", "/redoc"]:
        response = locked_client.get(path)
        assert response.status_code == 401, path
        assert response.json() == {"detail": "missing or wrong API key"}
    assert locked_client.post("/v1/retrieve", json={"query": "x"}).status_code == 401
    # HTTP only: a websocket to a public path still meets the key check.
    with pytest.raises(WebSocketDisconnect), locked_client.websocket_connect("/docs"):
        pass


def test_with_a_key_the_spec_declares_the_bearer_scheme_for_all_but_health(locked_client: TestClient) -> None:
    spec = locked_client.get("/openapi.json", headers={"Authorization": f"Bearer {KEY}"}).json()
    scheme = spec["components"]["securitySchemes"]["bearer"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    assert spec["security"] == [{"bearer": []}]
    assert spec["paths"]["/health"]["get"]["security"] == []
    assert "security" not in spec["paths"]["/v1/retrieve"]["post"]  # the spec's default: the key


def test_without_a_key_the_spec_has_no_security_scheme(open_client: TestClient) -> None:
    spec = open_client.get("/openapi.json").json()
    assert "securitySchemes" not in spec.get("components", {}) and "security" not in spec
    assert "{&quot;needs_key&quot;: false" in open_client.get("/docs").text
