"""render.yaml, Procfile, docs/deploy.md and docs/runbook.md agree with the code."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from core.cli import COMMANDS as CLI_COMMANDS
from core.ops.commands import COMMANDS as OPS_COMMANDS
from core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = (ROOT / "docs" / "deploy.md").read_text()
RUNBOOK = (ROOT / "docs" / "runbook.md").read_text()
#: variables read by the platforms rather than by Settings
PLATFORM_VARIABLES = {"PYTHON_VERSION", "MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET"}
OLD_MODAL_NAMES = ("container_idle_timeout", "concurrency_limit", "allow_concurrent_inputs")


def setting_names() -> set[str]:
    return {name.upper() for name in Settings.model_fields}


def secret_names() -> set[str]:
    return {
        name.upper()
        for name, field in Settings.model_fields.items()
        if "SecretStr" in str(field.annotation) or field.annotation is SecretStr
    } | {"MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET", "DATABASE_URL"}


def blueprint() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "render.yaml").read_text())


def service(kind: str) -> dict[str, Any]:
    return next(s for s in blueprint()["services"] if s["type"] == kind)


def code_blocks(markdown: str) -> list[str]:
    return re.findall(r"```[a-z]*\n(.*?)```", markdown, flags=re.DOTALL)


def test_blueprint_runs_web_and_worker_like_the_procfile() -> None:
    procfile = dict(
        line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line
    )
    assert service("web")["startCommand"] == procfile["web"].strip() == "blanklogo web"
    assert service("worker")["startCommand"] == procfile["worker"].strip() == "blanklogo worker"
    assert service("web")["healthCheckPath"] == "/health"
    for kind in ("web", "worker"):
        assert "[gpu]" not in service(kind)["buildCommand"]  # torch stays off Render


def test_blueprint_has_a_non_evicting_private_key_value_wired_to_both_services() -> None:
    redis = service("keyvalue")
    assert redis["maxmemoryPolicy"] == "noeviction"
    assert redis["ipAllowList"] == []
    for kind in ("web", "worker"):
        wired = [e for e in service(kind)["envVars"] if e.get("key") == "REDIS_URL"]
        assert wired == [
            {
                "key": "REDIS_URL",
                "fromService": {
                    "type": "keyvalue",
                    "name": redis["name"],
                    "property": "connectionString",
                },
            }
        ]


def test_blueprint_variables_exist_and_secrets_are_never_written_down() -> None:
    known = setting_names() | PLATFORM_VARIABLES
    groups = {g["name"]: g["envVars"] for g in blueprint()["envVarGroups"]}
    entries = [e for values in groups.values() for e in values]
    for kind in ("web", "worker"):
        env = service(kind)["envVars"]
        assert {e["fromGroup"] for e in env if "fromGroup" in e} <= set(groups)
        entries += [e for e in env if "key" in e]
        keys = {e["key"] for e in env if "key" in e}
        assert {"DATABASE_URL", "SUPABASE_URL", "SUPABASE_SERVICE_KEY"} <= keys
        assert {"MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET"} <= keys
    for entry in entries:
        assert entry["key"] in known, entry["key"]
        if entry["key"] in secret_names():
            assert entry.get("sync") is False and "value" not in entry, entry
    values = {e["key"]: e.get("value") for e in entries}
    assert values["STORAGE_BACKEND"] == "supabase"
    assert values["GPU_BACKEND"] == "modal"
    # the worker waits for the GPU longer than the GPU may run
    assert int(values["ENGINE_TIMEOUT_S"]) > int(values["MODAL_TIMEOUT_S"])


def test_deploy_guide_explains_every_setting_in_its_table() -> None:
    rows = set(re.findall(r"^\| `([A-Z_]+)`", DEPLOY, flags=re.MULTILINE))
    rows |= set(re.findall(r"^\| `[A-Z_]+` / `([A-Z_]+)`", DEPLOY, flags=re.MULTILINE))
    missing = setting_names() - rows
    assert not missing, f"docs/deploy.md lacks rows for {sorted(missing)}"


@pytest.mark.parametrize("document", ["deploy", "runbook"])
def test_documented_commands_exist(document: str) -> None:
    text = {"deploy": DEPLOY, "runbook": RUNBOOK}[document]
    for block in code_blocks(text):
        for command in re.findall(r"\bblanklogo ([a-z-]+)", block):
            assert command in CLI_COMMANDS, command
        for sub in re.findall(r"\bblanklogo ops ([a-z-]+)", block):
            assert sub in OPS_COMMANDS, sub
    for sub in re.findall(r"`blanklogo ops ([a-z-]+)", text):
        assert sub in OPS_COMMANDS, sub


def test_runbook_answers_each_incident_with_the_service_commands() -> None:
    sections = re.split(r"^### ", RUNBOOK, flags=re.MULTILINE)
    incidents = {s.splitlines()[0]: s for s in sections if "**Symptoms**" in s}
    assert {
        'Job stuck in "processing"',
        "Modal cold start too slow",
        "Queue backlog",
        "Modal out of memory",
        "Database connection issues",
    } <= set(incidents)
    for title, body in incidents.items():
        assert re.search(r"/health|/queue|/job|/retry-stuck|blanklogo ops", body), title
    assert "/retry-stuck" in incidents['Job stuck in "processing"']
    assert "pg_dump" in RUNBOOK and "pg_restore" in RUNBOOK
    assert "RESULT_TTL_DAYS" in RUNBOOK


@pytest.mark.parametrize("document", ["deploy", "runbook"])
def test_docs_use_only_modal_1x_names_in_code(document: str) -> None:
    text = {"deploy": DEPLOY, "runbook": RUNBOOK}[document]
    for block in code_blocks(text):
        assert not any(name in block for name in OLD_MODAL_NAMES), block
        assert "modal.gpu." not in block
    assert "scaledown_window" in text
    assert "modal deploy gpu/modal_app.py" in text
