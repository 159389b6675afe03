"""Command parsing and per-channel rendering. Pure: no fixtures."""

from __future__ import annotations

import pytest

from core.ops.commands import UsageError, normalize_command, parse_command
from core.ops.render import render_health, render_refusal, render_stuck
from core.ops.reports import StuckAction, StuckReport


@pytest.mark.parametrize(
    ("command", "name"),
    [
        ("/retry-stuck", "retry-stuck"),
        ("/retry_stuck@blanklogo_bot", "retry-stuck"),
        ("RETRY_STUCK", "retry-stuck"),
        (" /Health ", "health"),
    ],
)
def test_command_names_from_every_channel_mean_the_same(command: str, name: str) -> None:
    assert normalize_command(command) == name


def test_retry_stuck_takes_minutes_and_dry_run_in_any_order() -> None:
    parsed = parse_command("retry-stuck", "--dry-run 15m")
    assert (parsed.minutes, parsed.dry_run) == (15.0, True)
    parsed = parse_command("retry_stuck", "2.5")
    assert (parsed.minutes, parsed.dry_run) == (2.5, False)
    assert parse_command("retry-stuck", "").minutes is None


def test_a_job_id_may_be_quoted_or_in_code_marks() -> None:
    assert parse_command("job", "`abc123`").job_id == "abc123"


@pytest.mark.parametrize("args", ["99999999", "1e3", "--force", "ten"])
def test_bad_retry_stuck_arguments_raise_usage(args: str) -> None:
    with pytest.raises(UsageError, match="Usage: /retry-stuck"):
        parse_command("retry-stuck", args)


def test_slack_text_escapes_what_mrkdwn_would_read_as_markup() -> None:
    report = StuckReport(
        dry_run=False,
        stuck_after_s=600,
        actions=[StuckAction("j1", "slack", "lease <expired> & gone", "requeued", 1, 3)],
    )
    text = render_stuck(report, "slack")
    assert "lease &lt;expired&gt; &amp; gone" in text
    assert "<expired>" not in text


def test_health_in_each_format_names_the_failing_part() -> None:
    health = {
        "status": "down",
        "version": "0.1.0",
        "services": {
            "redis": {"status": "down", "latency_ms": 1.2, "error": "redis unreachable: refused"},
            "database": {"status": "ok", "latency_ms": 3.4},
            "workers": {"status": "degraded", "alive": 0, "error": "no worker heartbeat"},
        },
    }
    assert render_health(health, "text").splitlines()[:3] == [
        "Health: DOWN (version 0.1.0)",
        "DOWN redis 1 ms - redis unreachable: refused",
        "OK database 3 ms",
    ]
    assert ":x: down *redis*" in render_health(health, "slack")
    assert "❌ down redis" in render_health(health, "telegram")
    assert "\033[31mDOWN" in render_health(health, "terminal")


def test_refusals_name_the_allowlist_of_their_channel() -> None:
    assert "SLACK_ADMIN_USER_IDS" in render_refusal("slack", "queue", "slack")
    assert "/retry_stuck" in render_refusal("telegram", "retry-stuck", "telegram")
