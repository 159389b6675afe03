"""The intake API fuzzed from its own OpenAPI document with schemathesis: no 5xx, no crash."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from core.settings import Settings
from tests.hostile.live_app import LiveApp
from tests.pipeline.conftest import forget_prefix
from tests.webhooks.conftest import API_KEY, WEBHOOK_SECRET

pytestmark = pytest.mark.redis

MAX_EXAMPLES = 30


@pytest.fixture
def live(make_settings: Callable[..., Settings], redis_url: str) -> Iterator[LiveApp]:
    app = LiveApp(
        make_settings(
            redis_url=redis_url,
            api_keys=API_KEY,
            webhook_secret=WEBHOOK_SECRET,
            allow_loopback_urls=False,
            max_upload_mb=1,
        )
    ).start()
    yield app
    app.stop()
    asyncio.run(forget_prefix(redis_url, app.settings.redis_prefix))


def _fuzz(
    live: LiveApp, headers: dict[str, str], mode: GenerationMode = GenerationMode.POSITIVE
) -> list[str]:
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    session = requests.Session()
    seen: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        seen.append(operation.label)

        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(
                base_url=live.url,
                session=session,
                headers=headers,
                checks=[not_a_server_error],
                timeout=10,
            )

        check()
    session.close()
    return seen


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzzed_requests_from_the_openapi_document_never_get_a_server_error(
    live: LiveApp, mode: GenerationMode
) -> None:
    seen = _fuzz(live, {"Authorization": f"Bearer {API_KEY}"}, mode)
    assert any(label.startswith("POST /v1/jobs") for label in seen), seen
    assert any("{id}" in label or "{job_id}" in label for label in seen), seen


def test_fuzzed_requests_without_credentials_never_get_a_server_error(live: LiveApp) -> None:
    _fuzz(live, {})
