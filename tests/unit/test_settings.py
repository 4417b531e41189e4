"""Settings built from an environment mapping: parsing, aliases, overrides, errors, redaction."""

from __future__ import annotations

import dataclasses
import re

import pytest

from stream.core.config import ModelParams
from stream.settings import Settings, SettingsError, describe, env_name, redact_url, unknown_variables
from tests.support.events import DAY, MIN

# --- builders ----------------------------------------------------------------


def settings(**env: str) -> Settings:
    """Settings from `TOUCHSTREAM_<NAME>` variables given as `NAME=value`."""
    return Settings.from_env({env_name(name.lower()): value for name, value in env.items()})


# --- parsing --------------------------------------------------------------------


def test_empty_environment_gives_the_defaults():
    assert Settings.from_env({}) == Settings()
    assert Settings().session_timeout_ms == 30 * MIN
    assert Settings().lookback_ms == 90 * DAY


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("30m", 30 * MIN),
        ("90d", 90 * DAY),
        ("500ms", 500),
        ("1500", 1500),
        ("10s", 10_000),
        ("2h", 2 * 3600 * 1000),
        ("1.5s", 1500),
        (" 45 m ", 45 * MIN),
    ],
)
def test_durations(text, ms):
    assert settings(SESSION_TIMEOUT_MS=text).session_timeout_ms == ms


def test_every_duration_field_parses_durations():
    s = settings(
        SESSION_TIMEOUT_MS="45m",
        LOOKBACK_MS="30d",
        CONVERSION_TTL_MS="1d",
        IDENTITY_TTL_MS="90d",
        OUTBOX_TTL_MS="2d",
        SWEEP_INTERVAL_MS="5s",
        MAX_FUTURE_SKEW_MS="1h",
        HALF_LIFE_MS="3d",
    )
    assert (
        s.session_timeout_ms,
        s.lookback_ms,
        s.conversion_ttl_ms,
        s.identity_ttl_ms,
        s.outbox_ttl_ms,
        s.sweep_interval_ms,
        s.max_future_skew_ms,
        s.half_life_ms,
    ) == (45 * 60_000, 30 * DAY, DAY, 90 * DAY, 2 * DAY, 5000, 3600_000, 3 * DAY)


def test_conversions_are_kept_two_years_and_the_identity_map_one() -> None:
    """Revenue closed in a CRM up to two years after its conversion is still attributed; the
    identity map has a retention of its own."""
    s = settings()
    assert (s.conversion_ttl_ms, s.identity_ttl_ms) == (730 * DAY, 365 * DAY)


def test_replicas_to_wait_for_are_one_on_a_cluster_unless_set() -> None:
    assert Settings().replicas_to_wait == 0
    assert settings(REDIS_CLUSTER="true").replicas_to_wait == 1
    assert settings(REDIS_CLUSTER="true", REDIS_REPLICAS="0").replicas_to_wait == 0
    assert settings(REDIS_REPLICAS="2").replicas_to_wait == 2
    assert settings(REDIS_REPLICAS="auto", REDIS_CLUSTER="yes").replicas_to_wait == 1
    assert settings(REDIS_REPLICA_TIMEOUT_MS="250ms").redis_replica_timeout_ms == 250
    assert ("TOUCHSTREAM_REDIS_REPLICAS", "auto") in {(name, default) for name, default, _ in describe()}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("REDIS_REPLICAS", "-1", "expected auto or a number of replicas (0 or more), got '-1'"),
        ("REDIS_REPLICAS", "one", "invalid literal for int()"),
        ("REDIS_REPLICA_TIMEOUT_MS", "0", "must be more than 0 and at most 60s"),
        ("REDIS_REPLICA_TIMEOUT_MS", "2m", "must be more than 0 and at most 60s"),
    ],
)
def test_bad_replica_settings_say_why(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        settings(**{name: value})


def test_integers_and_text():
    s = settings(PARTITIONS="12", JOURNEY_CAP="50", APP_ID="ts-eu", TOPIC_PREFIX="eu.")
    assert (s.partitions, s.journey_cap, s.app_id, s.topic_prefix) == (12, 50, "ts-eu", "eu.")
    assert s.topic("attribution.credits") == "eu.attribution.credits"


def test_position_weights_and_model_params():
    s = settings(POSITION_WEIGHTS="0.5,0,0.5", HALF_LIFE_MS="1d")
    assert s.position_weights == (0.5, 0.0, 0.5)
    assert s.model_params == ModelParams(position_weights=(0.5, 0.0, 0.5), half_life_ms=DAY)


def test_model_lists_are_comma_separated_and_trimmed():
    assert settings(MODELS=" linear, first_touch ,,").models == ("linear", "first_touch")
    assert settings(MODELS="").models == ()


def test_plain_kafka_and_redis_variables_are_accepted():
    s = Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": "k1:9092,k2:9092", "REDIS_URL": "redis://r:6379/1"})
    assert (s.kafka_bootstrap_servers, s.redis_url) == ("k1:9092,k2:9092", "redis://r:6379/1")


def test_touchstream_variable_wins_over_the_alias():
    env = {"REDIS_URL": "redis://plain", "TOUCHSTREAM_REDIS_URL": "redis://ours"}
    assert Settings.from_env(env).redis_url == "redis://ours"


def test_overrides_win():
    s = Settings.from_env(
        {"TOUCHSTREAM_PARTITIONS": "4", "REDIS_URL": "redis://env"},
        partitions=2,
        redis_url="redis://override",
    )
    assert (s.partitions, s.redis_url) == (2, "redis://override")


def test_unrelated_variables_are_ignored():
    assert Settings.from_env({"PARTITIONS": "3", "TOUCHSTREAM_NOPE": "1"}) == Settings()


def test_unknown_touchstream_variables_are_named():
    env = {
        "TOUCHSTREAM_NOPE": "1",
        "TOUCHSTREAM_BATCH_WITHIN_MS": "50ms",  # retired
        "TOUCHSTREAM_PARTITIONS": "3",
        "TOUCHSTREAM_CACHE_DIR": "/tmp/x",
        "PATH": "/bin",
    }
    assert unknown_variables(env) == ["TOUCHSTREAM_BATCH_WITHIN_MS", "TOUCHSTREAM_NOPE"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PARTITIONS", "eight"),
        ("WEB_PORT", "80.5"),
        ("SESSION_TIMEOUT_MS", "30 minutes"),
        ("LOOKBACK_MS", "-5d"),
        ("LOOKBACK_MS", "90D"),
        ("POSITION_WEIGHTS", "0.5,0.5"),
        ("POSITION_WEIGHTS", "a,b,c"),
        ("POSITION_WEIGHTS", "-1,1,1"),
        ("POSITION_WEIGHTS", "0,0,0"),
    ],
)
def test_bad_values_name_the_variable(name, value):
    with pytest.raises(SettingsError, match=rf"^TOUCHSTREAM_{name}="):
        settings(**{name: value})


@pytest.mark.parametrize("value", ["nan,0.2,0.4", "inf,0.2,0.4"])
def test_non_finite_position_weights_are_rejected(value):
    with pytest.raises(SettingsError, match=r"^TOUCHSTREAM_POSITION_WEIGHTS="):
        settings(POSITION_WEIGHTS=value)


def test_settings_error_is_a_value_error():
    assert issubclass(SettingsError, ValueError)


# --- secrets ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://user:s3cret@cache:6379/0", "redis://user:***@cache:6379/0"),
        ("rediss://:s3cret@cache:6380", "rediss://:***@cache:6380"),
        ("redis://cache:6379/0", "redis://cache:6379/0"),
    ],
)
def test_repr_redacts_the_redis_password(url, shown):
    s = Settings(redis_url=url)
    assert redact_url(url) == shown
    assert f"redis_url={shown!r}" in repr(s)
    assert "s3cret" not in repr(s)
    assert "s3cret" not in str(s)
    assert s.redis_url == url  # only the display is redacted


def test_repr_lists_every_field():
    text = repr(Settings())
    assert text.startswith("Settings(kafka_bootstrap_servers='127.0.0.1:9092', ")
    assert all(f"{f.name}=" in text for f in dataclasses.fields(Settings))


# --- documentation ----------------------------------------------------------------------


def test_describe_lists_every_field_with_its_variable():
    rows = describe()
    assert [var for var, _, _ in rows] == [
        "TOUCHSTREAM_" + f.name.upper() for f in dataclasses.fields(Settings)
    ]
    assert all(help_text for _, _, help_text in rows)
    assert ("TOUCHSTREAM_SESSION_TIMEOUT_MS", str(30 * MIN)) in [(v, d) for v, d, _ in rows]
    assert ("TOUCHSTREAM_POSITION_WEIGHTS", "0.4,0.2,0.4") in [(v, d) for v, d, _ in rows]


def test_described_defaults_parse_back_to_the_defaults():
    assert Settings.from_env({var: default for var, default, _ in describe()}) == Settings()


def test_to_env_round_trips_every_setting() -> None:
    from stream.settings import to_env

    custom = Settings.from_env(
        {
            "TOUCHSTREAM_LOOKBACK_BY_TYPE": "lead=30d, purchase=90d",
            "TOUCHSTREAM_MODELS": "linear,markov",
            "TOUCHSTREAM_POSITION_WEIGHTS": "0.5,0,0.5",
            "TOUCHSTREAM_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
        }
    )
    assert custom.lookback_by_type == (("lead", 30 * 86_400_000), ("purchase", 90 * 86_400_000))
    assert custom.kafka_security_protocol == "SASL_SSL"
    assert Settings.from_env(to_env(custom)) == custom


def test_credit_rows_all_off_or_some_of_the_models_computed():
    def credit_models(credit_rows: str, models: str = "") -> object:
        env = {"TOUCHSTREAM_CREDIT_ROWS": credit_rows, "TOUCHSTREAM_MODELS": models}
        return Settings.from_env(env).config().credit_models

    assert credit_models("all") is None
    assert credit_models("off") == ()
    assert credit_models(" linear, markov ") == ("linear", "markov")
    with pytest.raises(SettingsError, match=r"^TOUCHSTREAM_CREDIT_ROWS: markov not among the models"):
        credit_models("markov", models="linear,first_touch")


def test_the_markov_order_is_one_or_more() -> None:
    """An order-0 chain has no states: one error line, not a traceback from the model."""
    with pytest.raises(SettingsError, match=r"^TOUCHSTREAM_MARKOV_ORDER must be 1 or more, got 0$"):
        settings(MARKOV_ORDER="0")
