"""Configuration from the environment (names fixed by DESIGN.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Every knob of the service; a channel whose token is missing is simply off."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    # infrastructure
    redis_url: str | None = None
    #: prefix of every Redis key we own (arq queue, dedup keys, heartbeats); tests vary it
    redis_prefix: str = "blanklogo"
    database_url: str | None = None
    storage_backend: Literal["local", "supabase"] = "local"
    storage_dir: Path = Path("var/storage")
    data_dir: Path = Path("var")
    supabase_url: str | None = None
    supabase_service_key: SecretStr | None = None
    supabase_bucket: str = "blanklogo"
    #: where links to results point; unset: http://127.0.0.1:{PORT}
    public_base_url: str = "http://127.0.0.1:8080"
    url_signing_key: SecretStr | None = None
    gpu_backend: Literal["local", "modal"] = "local"
    modal_app_name: str = "blanklogo-watermark-removal"
    modal_function_name: str = "remove_watermark"
    modal_gpu: str = "A10G"
    modal_timeout_s: int = 1800
    modal_scaledown_window_s: int = 120
    modal_max_containers: int = 10
    engine_device: Literal["auto", "cpu", "cuda"] = "auto"
    engine_timeout_s: int = 1800

    # chat channels
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_base_url: str = "https://slack.com/api/"
    slack_admin_user_ids: Annotated[list[str], NoDecode] = Field(default_factory=list)
    slack_upload_limit_mb: int = 1000
    telegram_bot_token: SecretStr | None = None
    telegram_webhook_secret: SecretStr | None = None
    telegram_api_base_url: str = "https://api.telegram.org/bot"
    telegram_file_base_url: str | None = None
    telegram_local_mode: bool = False
    telegram_admin_user_ids: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # generic intake
    webhook_secret: SecretStr | None = None
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    allow_loopback_urls: bool = False

    # job policy
    job_lease_seconds: int = 300
    stuck_after_seconds: int = 600
    max_attempts: int = 3
    result_ttl_days: int = 7
    max_upload_mb: int = 500
    max_duration_s: int = 600
    max_width: int = 4096
    max_height: int = 4096
    user_rate_limit_per_hour: int = 20

    # http
    host: str = "0.0.0.0"
    port: int = 8080

    @field_validator(
        "redis_url",
        "database_url",
        "supabase_url",
        "supabase_service_key",
        "url_signing_key",
        "slack_bot_token",
        "slack_signing_secret",
        "slack_app_token",
        "telegram_bot_token",
        "telegram_webhook_secret",
        "telegram_file_base_url",
        "webhook_secret",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `TELEGRAM_BOT_TOKEN=` in an env file means "off", not "a token that is empty"
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("slack_admin_user_ids", "telegram_admin_user_ids", "api_keys", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @model_validator(mode="after")
    def _public_url_follows_the_port(self) -> Settings:
        # without PUBLIC_BASE_URL, links must point at the port this process really serves
        if "public_base_url" not in self.model_fields_set:
            self.public_base_url = f"http://127.0.0.1:{self.port}"
        return self

    @property
    def queue_name(self) -> str:
        return f"{self.redis_prefix}:queue"

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    @property
    def slack_enabled(self) -> bool:
        # HTTP events need the signing secret; Socket Mode (app token) needs no public route
        return self.slack_bot_token is not None and (
            self.slack_signing_secret is not None or self.slack_app_token is not None
        )

    @property
    def telegram_enabled(self) -> bool:
        return self.telegram_bot_token is not None
