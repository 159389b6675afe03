"""The app manifest asks for what the bot uses, and routes what the bot handles."""

from __future__ import annotations

from pathlib import Path

import yaml

from bots.slack.commands import COMMANDS

MANIFEST = Path(__file__).resolve().parents[2] / "bots" / "slack_manifest.yml"


def test_the_manifest_has_the_scopes_events_and_commands_the_bot_needs() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert scopes == {
        "app_mentions:read",
        "channels:history",
        "groups:history",
        "im:history",
        "mpim:history",
        "files:read",
        "files:write",
        "chat:write",
        "commands",
    }
    events = manifest["settings"]["event_subscriptions"]
    assert set(events["bot_events"]) == {
        "app_mention",
        "message.channels",
        "message.groups",
        "message.im",
        "message.mpim",
    }
    assert events["request_url"].endswith("/slack/events")
    commands = manifest["features"]["slash_commands"]
    assert {c["command"] for c in commands} == set(COMMANDS)
    assert all(c["url"].endswith("/slack/events") for c in commands)
