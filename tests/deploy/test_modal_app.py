"""The Modal app's declaration (Modal 1.x names, settings) and its GPU function run locally."""

from __future__ import annotations

import ast
import importlib
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import modal
import pytest
from modal._utils.async_utils import synchronizer

from core.settings import Settings
from tests.deploy.fake_supabase import FakeStorage
from tests.media import count_frames, make_clip

ROOT = Path(__file__).resolve().parents[2]
MODAL_APP = ROOT / "gpu" / "modal_app.py"
#: Modal < 1.0 names that raise in Modal 1.x
OLD_KEYWORDS = {
    "container_idle_timeout",
    "concurrency_limit",
    "allow_concurrent_inputs",
    "keep_warm",
}
DEPLOY_ENV = ("MODAL_APP_NAME", "MODAL_GPU", "MODAL_TIMEOUT_S", "MODAL_SCALEDOWN_WINDOW_S")


@pytest.fixture
def modal_app(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """gpu.modal_app imported fresh under this test's environment, restored afterwards."""
    for name in (*DEPLOY_ENV, "MODAL_MAX_CONTAINERS", "MODAL_FUNCTION_NAME"):
        monkeypatch.delenv(name, raising=False)
    module = importlib.import_module("gpu.modal_app")
    yield module
    monkeypatch.undo()
    importlib.reload(module)


def test_app_is_declared_with_default_name_and_settings_driven_gpu_function(
    modal_app: Any,
) -> None:
    assert modal_app.app.name == "blanklogo-watermark-removal"
    options = modal_app.gpu_function_options(Settings(), modal_app.image)
    assert options["gpu"] == "A10G"
    assert options["timeout"] == 1800
    assert options["scaledown_window"] == 120
    assert options["max_containers"] == 10
    assert options["name"] == "remove_watermark"
    assert modal_app.remove_watermark._spec_.gpus == "A10G"
    assert not OLD_KEYWORDS & set(options)


def test_deploy_environment_changes_gpu_timeout_window_and_cap(
    modal_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODAL_APP_NAME", "blanklogo-staging")
    monkeypatch.setenv("MODAL_GPU", "H100")
    monkeypatch.setenv("MODAL_TIMEOUT_S", "900")
    monkeypatch.setenv("MODAL_SCALEDOWN_WINDOW_S", "300")
    monkeypatch.setenv("MODAL_MAX_CONTAINERS", "3")
    module = importlib.reload(modal_app)

    assert module.app.name == "blanklogo-staging"
    # the container re-imports the module: it must see the same names and limits
    baked = module.container_env(Settings())
    assert baked["MODAL_APP_NAME"] == "blanklogo-staging"
    assert baked["MODAL_GPU"] == "H100"
    assert baked["MODAL_FUNCTION_NAME"] == "remove_watermark"
    assert baked["STORAGE_BACKEND"] == "supabase"
    assert module.remove_watermark._spec_.gpus == "H100"
    options = module.gpu_function_options(Settings(), module.image)
    assert (options["timeout"], options["scaledown_window"], options["max_containers"]) == (
        900,
        300,
        3,
    )


def _scratch_body() -> None:
    """A global function for Modal to decorate."""


def test_modal_accepts_the_options_and_rejects_the_old_names(modal_app: Any) -> None:
    options = modal_app.gpu_function_options(Settings(), modal_app.image)
    scratch = modal.App("blanklogo-options-check")

    scratch.function(**options)(_scratch_body)
    with pytest.raises(modal.exception.DeprecationError, match="scaledown_window"):
        scratch.function(image=modal_app.image, container_idle_timeout=120)(_scratch_body)


def test_source_uses_no_pre_1x_modal_names() -> None:
    tree = ast.parse(MODAL_APP.read_text())
    keywords = {node.arg for node in ast.walk(tree) if isinstance(node, ast.keyword)}
    attributes = {
        ast.unparse(node)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
    }
    assert not OLD_KEYWORDS & keywords
    assert not any(a.startswith("modal.gpu.") for a in attributes)
    assert "modal.web_endpoint" not in {ast.unparse(n) for n in ast.walk(tree)}


def test_image_carries_our_packages_and_the_gpu_extra(modal_app: Any) -> None:
    image = synchronizer._translate_in(modal_app.image)
    assert {"core", "gpu"} <= set(image._added_python_source_set)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    gpu_extra = pyproject["project"]["optional-dependencies"]["gpu"]
    assert set(gpu_extra) <= set(modal_app.IMAGE_REQUIREMENTS)


def test_health_endpoint_is_a_get_web_endpoint_answering_json(modal_app: Any) -> None:
    health = synchronizer._translate_in(modal_app.health)
    assert health._webhook_config.method == "GET"
    assert health._tag == "health"


async def test_health_body_reports_status_gpu_torch_and_cuda(modal_app: Any) -> None:
    answer = await modal_app.health.local()
    assert answer["status"] == "ok"
    assert answer["gpu"] == "A10G"
    assert answer["torch"]  # torch is installed here, as in the image
    assert answer["cuda"] in (True, False)


def test_importing_the_app_needs_no_credentials_or_torch(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys, gpu.modal_app as m; "
        "assert 'torch' not in sys.modules and 'cv2' not in sys.modules; print(m.app.name)"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MODAL_CONFIG_PATH": "/nonexistent"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "blanklogo-watermark-removal"


CONTAINER_IMPORTS = """
import importlib, pkgutil, sys
BLOCKED = set(sys.argv[1].split(","))
class NotInImage:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(name + " is not in the Modal image")
sys.meta_path.insert(0, NotInImage())
import gpu
names = ["gpu.modal_app", "core.storage", "core.storage.supabase"]
names += [m.name for m in pkgutil.iter_modules(gpu.__path__, "gpu.")]
for name in names:
    importlib.import_module(name)
print(len(names))
"""


def test_container_code_imports_with_only_the_image_requirements(tmp_path: Path) -> None:
    """Base dependencies the image leaves out (queue, database, chat SDKs) are never needed."""
    import subprocess
    import sys

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wanted = {_distribution(r) for r in modal_app_requirements()}
    left_out = {
        _module_of(_distribution(r))
        for r in pyproject["project"]["dependencies"]
        if _distribution(r) not in wanted | {"modal"}
    }
    assert {"arq", "redis", "asyncpg", "slack_bolt", "telegram"} <= left_out
    done = subprocess.run(
        [sys.executable, "-c", CONTAINER_IMPORTS, ",".join(sorted(left_out))],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 5


def modal_app_requirements() -> tuple[str, ...]:
    import gpu.modal_app

    return tuple(gpu.modal_app.IMAGE_REQUIREMENTS)


def _distribution(requirement: str) -> str:
    return re.split(r"[<>=!\[ ;]", requirement, maxsplit=1)[0].lower()


def _module_of(distribution: str) -> str:
    return {
        "python-telegram-bot": "telegram",
        "slack-bolt": "slack_bolt",
        "slack-sdk": "slack_sdk",
        "prometheus-client": "prometheus_client",
        "imageio-ffmpeg": "imageio_ffmpeg",
        "pydantic-settings": "pydantic_settings",
    }.get(distribution, distribution.replace("-", "_"))


# --- the GPU function's body, run here ------------------------------------------------------


@pytest.mark.slow
async def test_gpu_function_cleans_a_clip_from_a_signed_url_into_supabase(
    modal_app: Any,
    fake_supabase: tuple[FakeStorage, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """`.local()` with the container's environment: signed URL in, bucket object out."""
    state, base = fake_supabase
    clip = make_clip(tmp_path / "in.mp4", seconds=1.0, size="160x120", fps=10)
    state.objects[("videos", "inputs/j1/in.mp4")] = (clip.read_bytes(), "video/mp4")
    state.tokens["tok"] = ("videos", "inputs/j1/in.mp4")
    signed = f"{base}/storage/v1/object/sign/videos/inputs/j1/in.mp4?token=tok"
    for name, value in {
        "STORAGE_BACKEND": "supabase",
        "SUPABASE_URL": base,
        "SUPABASE_SERVICE_KEY": "service-key",
        "SUPABASE_BUCKET": "videos",
        "DATA_DIR": str(tmp_path / "data"),
        "ENGINE_DEVICE": "auto",
    }.items():
        monkeypatch.setenv(name, value)

    answer = await modal_app.remove_watermark.local(
        output_key="outputs/j1.mp4",
        options={"region": "top-left"},
        input_url=signed,
        limits={"max_width": 4096, "max_height": 4096, "max_duration_s": 600},
    )

    assert "error" not in answer, answer
    data, content_type = state.objects[("videos", "outputs/j1.mp4")]
    assert content_type == "video/mp4"
    assert answer["output_size_bytes"] == len(data)
    out = tmp_path / "out.mp4"
    out.write_bytes(data)
    assert count_frames(out) == 10
    assert answer["report"]["frames"] == 10
    timings = answer["modal"]
    assert timings["device"] in ("cpu", "cuda")
    assert timings["gpu_s"] > 0
    assert timings["finished_at"] >= timings["started_at"] >= timings["container_started_at"]
    assert isinstance(timings["cold_start"], bool)
    assert state.seen("GET", "/object/sign/")  # fetched by the signed URL


@pytest.mark.slow
async def test_run_removal_on_a_storage_key_with_local_storage_reports_progress(
    modal_app: Any, tmp_path: Path
) -> None:
    from core.storage import open_storage

    settings = Settings(storage_dir=tmp_path / "storage", data_dir=tmp_path)
    storage = open_storage(settings)
    clip = make_clip(tmp_path / "in.mp4", seconds=1.0, size="160x120", fps=10, audio=False)
    await storage.put_file("inputs/j2/in.mp4", clip)
    seen: list[tuple[float, str]] = []

    answer = await modal_app.run_removal(
        output_key="outputs/j2.mp4",
        options={"region": "auto"},
        input_key="inputs/j2/in.mp4",
        settings=settings,
        progress=lambda fraction, step: seen.append((fraction, step)),
    )

    assert "error" not in answer, answer
    assert await storage.exists("outputs/j2.mp4")
    assert answer["output_size_bytes"] > 0
    assert seen and seen[0][0] <= seen[-1][0]


async def test_run_removal_returns_input_errors_by_name(modal_app: Any, tmp_path: Path) -> None:
    from core.storage import open_storage

    settings = Settings(storage_dir=tmp_path / "storage", data_dir=tmp_path)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video at all" * 100)
    await open_storage(settings).put_file("inputs/j3/junk.mp4", junk)

    answer = await modal_app.run_removal(
        output_key="outputs/j3.mp4",
        options={},
        input_key="inputs/j3/junk.mp4",
        settings=settings,
    )

    assert answer["error"]["type"] == "NotAVideo"
    assert answer["error"]["message"]
    assert not await open_storage(settings).exists("outputs/j3.mp4")
