from core.settings import Settings


def test_an_empty_token_turns_the_channel_off(monkeypatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "  ")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s")
    settings = Settings()
    assert not settings.telegram_enabled
    assert not settings.slack_enabled


def test_lists_are_read_from_comma_separated_values(monkeypatch) -> None:
    monkeypatch.setenv("SLACK_ADMIN_USER_IDS", "U1, U2,,")
    monkeypatch.setenv("API_KEYS", "k1,k2")
    settings = Settings()
    assert settings.slack_admin_user_ids == ["U1", "U2"]
    assert [key.get_secret_value() for key in settings.api_keys] == ["k1", "k2"]


def test_slack_runs_on_socket_mode_without_a_signing_secret(monkeypatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1")
    assert Settings().slack_enabled


def test_links_follow_the_port_unless_a_public_url_is_set(monkeypatch) -> None:
    monkeypatch.setenv("PORT", "9123")
    assert Settings().public_base_url == "http://127.0.0.1:9123"
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://bots.example.com")
    assert Settings().public_base_url == "https://bots.example.com"
