"""Slash commands: routed to the shared ops functions, admin-gated there, answered ephemerally."""

from __future__ import annotations

from typing import Any

import pytest

from bots.slack import commands
from core.deps import Deps
from tests.slack.conftest import ADMIN, SlackApp
from tests.slack.fake_slack import FakeSlack

pytestmark = pytest.mark.redis


async def test_a_non_admin_gets_an_ephemeral_refusal_and_the_refusal_is_audited(
    slack_app: SlackApp, slack_deps: Deps, fake_slack: FakeSlack
) -> None:
    status, body, elapsed = await slack_app.post_command(
        "/retry-stuck", "--dry-run", user_id="U0STRANGER", response_url=fake_slack.response_url()
    )
    assert status == 200 and elapsed < 3
    assert isinstance(body, dict)
    assert body["response_type"] == "ephemeral"
    assert "for operators only" in body["text"] and "SLACK_ADMIN_USER_IDS" in body["text"]
    [entry] = await slack_deps.store.audit_log()
    assert (entry.actor, entry.channel, entry.command, entry.args, entry.outcome) == (
        "slack:U0STRANGER",
        "slack",
        "retry-stuck",
        "--dry-run",
        "refused",
    )


@pytest.mark.parametrize(
    ("slash", "name", "args"),
    [
        ("/health", "health", ""),
        ("/queue", "queue", ""),
        ("/retry-stuck", "retry-stuck", "--dry-run"),
        ("/job", "job", "0123456789abcdef0123456789abcdef"),
        ("/retry", "retry", "0123456789abcdef0123456789abcdef"),
        ("/cancel", "cancel", "0123456789abcdef0123456789abcdef"),
    ],
)
async def test_each_command_from_an_admin_reaches_the_ops_function_of_its_name(
    slack_app: SlackApp, slack_deps: Deps, fake_slack: FakeSlack, slash: str, name: str, args: str
) -> None:
    status, body, elapsed = await slack_app.post_command(
        slash, args, user_id=ADMIN, response_url=fake_slack.response_url()
    )
    await slack_app.settle()
    assert status == 200 and elapsed < 3
    assert isinstance(body, dict) and body["response_type"] == "ephemeral"
    replies = [body["text"], *(r["text"] for r in fake_slack.responses)]
    [entry] = await slack_deps.store.audit_log()
    assert (entry.actor, entry.command, entry.args) == (f"slack:{ADMIN}", name, args)
    assert entry.outcome != "refused"
    assert all(r.strip() for r in replies)


async def test_a_slow_report_is_acked_at_once_and_sent_through_the_response_url(
    slack_app: SlackApp, fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commands, "ANSWER_IN_ACK_S", 0.0)
    status, body, _ = await slack_app.post_command(
        "/queue", "", user_id=ADMIN, response_url=fake_slack.response_url()
    )
    await slack_app.settle()
    assert status == 200
    assert isinstance(body, dict) and "Running `/queue`" in body["text"]
    [late] = fake_slack.responses
    assert late["response_type"] == "ephemeral"
    assert late["text"] and "Running" not in late["text"]


async def test_a_command_whose_ops_call_breaks_still_gets_an_answer(
    slack_app: SlackApp, fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(commands, "handle_command", broken)
    status, body, _ = await slack_app.post_command(
        "/health", "", user_id=ADMIN, response_url=fake_slack.response_url()
    )
    assert status == 200
    assert isinstance(body, dict) and "failed on our side" in body["text"]
