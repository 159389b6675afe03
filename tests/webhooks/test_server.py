"""build_app: the parts it mounts, the OpenAPI document, JSON errors."""

from __future__ import annotations

import logging

import pytest
from openapi_spec_validator import validate

from tests.webhooks.conftest import Api
from webhooks import server
from webhooks.appkeys import DEPS_KEY as APPKEYS_DEPS_KEY
from webhooks.openapi import ERROR_CODES

pytestmark = pytest.mark.redis


def test_deps_key_is_the_one_from_appkeys() -> None:
    assert server.DEPS_KEY is APPKEYS_DEPS_KEY


async def test_openapi_document_is_served_and_valid(api: Api) -> None:
    response = await api.client.get("/openapi.json")
    assert response.status == 200
    document = await response.json()
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {"/v1/jobs", "/v1/jobs/{id}", "/v1/jobs/{id}/result"}
    create = document["paths"]["/v1/jobs"]["post"]
    assert set(create["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert {"bearerAuth", "webhookSignature"} == set(document["components"]["securitySchemes"])
    assert document["servers"] == [{"url": api.base_url}]


def test_every_error_code_the_intake_raises_is_documented() -> None:
    import re
    from pathlib import Path

    from core import errors

    root = Path(server.__file__).parent
    raised = set()
    for name in ("intake.py", "uploads.py", "auth.py", "errors.py"):
        text = (root / name).read_text()
        raised |= set(re.findall(r'bad_request\(\s*"([a-z_]+)"', text))
        raised |= set(re.findall(r'http_error\(\s*[\w.]+,\s*"([a-z_]+)"', text))
    assert {"malformed_json", "invalid_body", "not_finished", "dns_unavailable"} <= raised
    ours = [
        cls.code
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.InputError | errors.UnsafeURL)
    ]
    assert raised | set(ours) <= set(ERROR_CODES)


async def test_health_and_files_parts_are_mounted(api: Api) -> None:
    routes = {r.resource.canonical for r in api.client.app.router.routes() if r.resource}
    assert {"/v1/jobs", "/v1/jobs/{id}", "/openapi.json", "/health"} <= routes
    assert any(route.startswith("/files/") for route in routes)


def test_a_part_that_does_not_exist_yet_is_skipped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="webhooks.server"):
        assert server._import_part("bots.no_such_channel") is None
    assert "bots.no_such_channel is not installed yet" in caplog.text


def test_a_part_with_a_broken_import_is_not_hidden() -> None:
    with pytest.raises(ModuleNotFoundError):
        server._import_part("tests.webhooks.part_with_broken_import")


def test_display_url_names_loopback_for_wildcard_hosts() -> None:
    assert server._display_url("0.0.0.0", 8080) == "http://127.0.0.1:8080"
    assert server._display_url("10.1.2.3", 80) == "http://10.1.2.3:80"
