"""Operator commands in Telegram: routed to the shared ops functions, admins only, audited."""

from __future__ import annotations

from tests.telegram.conftest import HEADERS
from tests.telegram.test_webhook import replies_to, settle
from tests.telegram.updates import ADMIN_ID, USER_ID, command_update


async def test_non_admin_ops_command_is_refused_and_audited(tg_client, fake_api):
    client, deps = await tg_client()
    update = command_update(1, "/queue", user_id=USER_ID, message_id=3)
    assert (await client.post("/telegram/webhook", json=update, headers=HEADERS)).status == 200
    await settle(client)
    (text,) = replies_to(fake_api, 3)
    assert "operators only" in text and "TELEGRAM_ADMIN_USER_IDS" in text
    (entry,) = await deps.store.audit_log()
    assert (entry.channel, entry.command, entry.outcome) == ("telegram", "queue", "refused")
    assert entry.actor.endswith(str(USER_ID))


async def test_admin_gets_the_queue_report(tg_client, fake_api):
    client, deps = await tg_client()
    update = command_update(2, "/queue", user_id=ADMIN_ID, message_id=4)
    assert (await client.post("/telegram/webhook", json=update, headers=HEADERS)).status == 200
    await settle(client)
    (text,) = replies_to(fake_api, 4)
    assert "Depth" in text and "Jobs by state" in text
    (entry,) = await deps.store.audit_log()
    assert (entry.command, entry.outcome) == ("queue", "ok")


async def test_retry_stuck_and_job_commands_reach_ops_with_their_arguments(tg_client, fake_api):
    client, deps = await tg_client()
    for update_id, text in ((5, "/retry_stuck"), (6, "/job 0123456789abcdef")):
        update = command_update(update_id, text, user_id=ADMIN_ID, message_id=update_id)
        assert (await client.post("/telegram/webhook", json=update, headers=HEADERS)).status == 200
    await settle(client)
    assert len(replies_to(fake_api, 5)) == 1 and len(replies_to(fake_api, 6)) == 1
    audited = {(entry.command, entry.args) for entry in await deps.store.audit_log()}
    assert ("retry-stuck", "") in audited
    assert ("job", "0123456789abcdef") in audited
