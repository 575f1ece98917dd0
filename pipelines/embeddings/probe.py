"""Ask an OpenAI-compatible embedding server what it serves, before anything is embedded: the model, its context, and
whether it truncates Matryoshka dimensions itself. Only ``httpx``: probing costs none of the OpenAI client's import.

>>> probe_server("http://127.0.0.1:30000/v1", "EMPTY")["model"]        # doctest: +SKIP
'Qwen/Qwen3-Embedding-0.6B'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from pipelines.embeddings.profiles import DEFAULT_TASK, Profile, profile_for
from pipelines.errors import EmbeddingServerError
from pipelines.settings import Settings


@dataclass(frozen=True)
class ServerSpec:
    """What a client of one server needs: where it is, the model it serves and how to ask it."""

    base: str  # the URL, ending in /v1
    model: str
    profile: Profile
    dimensions: int | None  # sent to the server (it truncates itself)
    truncate_to: int | None  # applied by the client (the server cannot)
    task: str  # the query instruction
    settings: Settings


def server_spec(url: str, settings: Settings) -> ServerSpec:
    """Probe the server at ``url`` and say how to build its client (``/v1`` is added when missing)."""
    base = url.rstrip("/")
    if not base.endswith("/v1"):
        base += "/v1"
    info = probe_server(base, settings.api_key.get_secret_value())
    model = settings.embeddings_model or info["model"]
    profile = profile_for(model, info.get("max_model_len"))
    truncate_to = None
    dimensions = settings.dimensions
    if dimensions is not None:
        check_dimensions(profile, dimensions)
        if not info.get("supports_dimensions"):
            truncate_to, dimensions = dimensions, None
    return ServerSpec(base, model, profile, dimensions, truncate_to, settings.task or DEFAULT_TASK, settings)


def check_dimensions(profile: Profile, dimensions: int) -> None:
    """Reject a Matryoshka dimension the model cannot give, before anything is embedded."""
    low, high = profile.min_dimension, profile.dimension
    if low is None:
        raise EmbeddingServerError(f"model {profile.name} has no Matryoshka dimensions; drop --dimensions")
    if dimensions < low or (high is not None and dimensions > high):
        raise EmbeddingServerError(f"--dimensions must be from {low} to {high} for {profile.name}, not {dimensions}")


def probe_server(base_url: str, api_key: str, timeout: float = 5.0) -> dict[str, Any]:
    """Reach the server quickly: the served model, its context and whether it truncates dimensions itself.

    A server that is down is reported in seconds, not after the long retry schedule of embedding requests.
    """
    headers = {"Authorization": f"Bearer {api_key}"}
    try:
        response = httpx.get(f"{base_url}/models", headers=headers, timeout=timeout)
    except httpx.HTTPError as error:
        raise EmbeddingServerError(f"cannot reach the embedding server at {base_url}: {error}") from error
    if response.status_code in (401, 403):
        raise EmbeddingServerError(f"{base_url} refused the API key (HTTP {response.status_code}); set --api-key")
    if response.status_code != 200:
        raise EmbeddingServerError(f"{base_url}/models answered HTTP {response.status_code}: {response.text[:200]}")
    models = response.json().get("data") or []
    if not models:
        raise EmbeddingServerError(f"{base_url}/models lists no model")
    info: dict[str, Any] = {"model": models[0]["id"], "max_model_len": models[0].get("max_model_len")}
    # /model_info is SGLang's; other servers lack it, and then the client truncates dimensions itself.
    root = base_url.removesuffix("/v1")
    try:
        model_info = httpx.get(f"{root}/model_info", headers=headers, timeout=timeout)
        if model_info.status_code == 200:
            info["supports_dimensions"] = bool((model_info.json().get("embedding") or {}).get("supports_dimensions"))
    except httpx.HTTPError:
        pass
    return info
