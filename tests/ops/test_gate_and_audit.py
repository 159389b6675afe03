"""The admin gate of handle_command and the audit row of every call (real SQLite/PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest

from core.deps import Deps
from core.ops import OpsRequest, handle_command
from tests.ops.conftest import SLACK_ADMIN, TELEGRAM_ADMIN

pytestmark = [pytest.mark.redis]


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """The gate is the same on every database: SQLite here, PostgreSQL in the test below."""
    return sqlite_url


async def last_audit(store: Any) -> Any:
    (entry,) = await store.audit_log(limit=1)
    return entry


async def test_slack_admin_runs_a_command_and_it_is_audited(deps: Deps, store: Any) -> None:
    reply = await handle_command(deps, OpsRequest("slack", SLACK_ADMIN, "/queue", ""))
    assert reply.ok
    entry = await last_audit(store)
    assert (entry.actor, entry.channel, entry.command, entry.outcome) == (
        f"slack:{SLACK_ADMIN}",
        "slack",
        "queue",
        "ok",
    )
    assert entry.detail == "depth 0 (Normal)"
    assert entry.at is not None


@pytest.mark.postgres
async def test_audit_rows_land_in_postgresql_too(
    pg_url: str, settings: Any, clock: Any, engine: Any
) -> None:
    from core.deps import build
    from tests.ops.conftest import open_store

    store = await open_store(pg_url, clock)
    deps = await build(settings, store=store, engine=engine, notifiers={})
    try:
        await handle_command(deps, OpsRequest("slack", SLACK_ADMIN, "queue"))
        await handle_command(deps, OpsRequest("slack", "UINTRUDER", "cancel", "abc"))
        newest, older = await store.audit_log(limit=2)
    finally:
        await deps.close()
        await store.close()
    assert (newest.actor, newest.command, newest.args, newest.outcome) == (
        "slack:UINTRUDER",
        "cancel",
        "abc",
        "refused",
    )
    assert (older.actor, older.command, older.outcome) == (f"slack:{SLACK_ADMIN}", "queue", "ok")


async def test_prefixed_actor_ids_are_recognised(deps: Deps, store: Any) -> None:
    reply = await handle_command(
        deps, OpsRequest("telegram", f"telegram:{TELEGRAM_ADMIN}", "queue")
    )
    assert reply.ok
    assert (await last_audit(store)).actor == f"telegram:{TELEGRAM_ADMIN}"


async def test_slack_non_admin_is_refused_clearly_and_audited(deps: Deps, store: Any) -> None:
    reply = await handle_command(deps, OpsRequest("slack", "UINTRUDER", "/retry-stuck", "5"))
    assert not reply.ok
    assert reply.data["refused"] is True
    assert reply.text == (
        "Sorry, `/retry-stuck` is for operators only. "
        "Ask an admin to add your user id to `SLACK_ADMIN_USER_IDS`."
    )
    entry = await last_audit(store)
    assert (entry.actor, entry.channel, entry.command, entry.args, entry.outcome) == (
        "slack:UINTRUDER",
        "slack",
        "retry-stuck",
        "5",
        "refused",
    )


async def test_telegram_non_admin_is_refused_in_telegram_words(deps: Deps, store: Any) -> None:
    reply = await handle_command(deps, OpsRequest("telegram", "999", "/retry_stuck", ""))
    assert not reply.ok
    assert reply.text == (
        "Sorry, /retry_stuck is for operators only. "
        "Ask an admin to add your user id to TELEGRAM_ADMIN_USER_IDS."
    )
    entry = await last_audit(store)
    assert (entry.actor, entry.outcome, entry.command) == ("telegram:999", "refused", "retry-stuck")


async def test_a_slack_admin_is_not_an_admin_in_telegram(deps: Deps, store: Any) -> None:
    reply = await handle_command(deps, OpsRequest("telegram", SLACK_ADMIN, "health"))
    assert not reply.ok and reply.data["refused"]


async def test_http_is_not_a_command_channel(deps: Deps, store: Any) -> None:
    reply = await handle_command(deps, OpsRequest("http", "anyone", "cancel", "abc"))
    assert not reply.ok
    assert "cannot be run from http" in reply.text
    assert (await last_audit(store)).outcome == "refused"


async def test_the_terminal_is_always_allowed(deps: Deps, store: Any) -> None:
    reply = await handle_command(deps, OpsRequest("cli", "alice", "queue"))
    assert reply.ok
    assert (await last_audit(store)).actor == "cli:alice"


@pytest.mark.parametrize(
    ("command", "args", "expected"),
    [
        ("retry-stuck", "soon", "I did not understand 'soon'."),
        ("retry-stuck", "-5", "I did not understand '-5'."),
        ("retry-stuck", "0", "minutes must be more than 0"),
        ("retry-stuck", "5 6", "I did not understand '6'."),
        ("job", "", "job needs exactly one job id."),
        ("cancel", "a b", "cancel needs exactly one job id."),
        ("retry", "../../etc", "'../../etc' is not a job id."),
        ("queue", "now please", "queue takes no arguments."),
        ("frobnicate", "", "Unknown command 'frobnicate'."),
        ("", "", "Unknown command '(empty)'."),
    ],
)
async def test_odd_arguments_get_usage_text_and_an_audit_row(
    deps: Deps, store: Any, command: str, args: str, expected: str
) -> None:
    reply = await handle_command(deps, OpsRequest("slack", SLACK_ADMIN, command, args))
    assert not reply.ok
    assert expected in reply.text
    assert "Usage:" in reply.text or "Ops commands:" in reply.text
    entry = await last_audit(store)
    assert entry.outcome == "error" and entry.detail.startswith("usage:")


async def test_a_failing_audit_write_never_blocks_the_reply(deps: Deps, store: Any) -> None:
    async def broken(entry: Any) -> None:
        raise RuntimeError("audit table is gone")

    store.record_audit = broken
    reply = await handle_command(deps, OpsRequest("cli", "alice", "queue"))
    assert reply.ok


async def test_a_command_whose_database_is_gone_answers_in_words(deps: Deps, store: Any) -> None:
    await store.close()
    reply = await handle_command(deps, OpsRequest("slack", SLACK_ADMIN, "queue"))
    assert not reply.ok
    assert reply.text.startswith("queue failed: StoreError")
    # health still answers, naming the database
    health = await handle_command(deps, OpsRequest("slack", SLACK_ADMIN, "health"))
    assert health.data["status"] == "down"
    assert health.data["services"]["database"]["status"] == "down"
    assert ":x: down *database*" in health.text
