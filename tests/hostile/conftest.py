"""Hostile-input fixtures: the intake API app (from the webhooks tests) and the Telegram bot."""

from tests.telegram.conftest import fake_api, make_deps, tg_client, tg_settings  # noqa: F401
from tests.webhooks.conftest import api, start_api  # noqa: F401
