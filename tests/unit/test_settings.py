from pathlib import Path

import pytest
import yaml

from pipeline.infra.settings import DEMO_PII_KEY, ENV_VARS, SettingsError, load, pii_key

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_are_the_embedded_local_setup() -> None:
    s = load({})
    assert s.kafka_bootstrap == "127.0.0.1:9092"
    assert s.clickhouse_dsn == "chdb://./var/clickhouse"
    with pytest.raises(SettingsError, match="SALESPULSE_PII_HMAC_KEY"):
        pii_key(s)


def test_environment_overrides_with_types_checked() -> None:
    s = load({"SALESPULSE_PARTITIONS": "8", "SALESPULSE_SINK_BATCH_SECONDS": "0.5", "SALESPULSE_TOPIC_PREFIX": "t1-"})
    assert s.partitions == 8 and s.sink_batch_seconds == 0.5 and s.topic("store.notes") == "t1-store.notes"
    with pytest.raises(SettingsError, match="SALESPULSE_PARTITIONS"):
        load({"SALESPULSE_PARTITIONS": "many"})
    with pytest.raises(SettingsError):
        load({"SALESPULSE_CLICKHOUSE_DATABASE": "x; DROP TABLE events"})


def test_production_refuses_the_demo_key() -> None:
    with pytest.raises(SettingsError):
        load({"SALESPULSE_ENV": "production", "SALESPULSE_PII_HMAC_KEY": DEMO_PII_KEY})
    assert load({"SALESPULSE_ENV": "production", "SALESPULSE_PII_HMAC_KEY": "k" * 32}).env == "production"


def test_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [v for v in ENV_VARS if f"`{v}`" not in readme]
    assert not missing, f"README lacks {missing}"


def test_docker_compose_uses_only_real_settings_and_commands() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert {"kafka", "clickhouse", "worker", "serve"} <= set(services)
    for name in ("worker", "serve"):
        svc = services[name]
        env = svc["environment"]
        assert set(env) <= set(ENV_VARS), set(env) - set(ENV_VARS)
        assert env["SALESPULSE_CLICKHOUSE_DSN"].startswith("http")
        assert env["SALESPULSE_KAFKA_BOOTSTRAP"] == "kafka:9092"
        assert svc["command"][0] == "salespulse" and svc["command"][1] == name
        assert "kafka" in svc["depends_on"]
    for name in ("kafka", "clickhouse"):
        assert "healthcheck" in services[name]
    kafka_env = services["kafka"]["environment"]
    assert kafka_env["KAFKA_PROCESS_ROLES"] == "broker,controller"


def test_settings_survive_the_trip_through_a_child_environment() -> None:
    from pipeline.infra.settings import to_env

    s = load(
        {
            "SALESPULSE_PII_HMAC_KEY": "k" * 20,
            "SALESPULSE_TOPIC_PREFIX": "t1-",
            "SALESPULSE_PARTITIONS": "8",
            "SALESPULSE_WORKER_WEB_ENABLED": "true",
            "SALESPULSE_SINK_BATCH_SECONDS": "0.25",
        }
    )
    assert load(to_env(s)) == s


def test_faust_web_is_local_and_its_state_views_are_off_in_production() -> None:
    from pipeline.infra.faust_app import create_app
    from pipeline.infra.settings import Settings

    prod = create_app(Settings(env="production", pii_hmac_key="k" * 32, var_dir=Path("var/test-unit"))).conf
    dev = create_app(Settings(var_dir=Path("var/test-unit"))).conf
    assert prod.web_bind == "127.0.0.1" and dev.web_bind == "127.0.0.1"
    assert not prod.web_tables_enabled and not prod.web_router_enabled and not prod.web_stats_enabled
    assert dev.web_tables_enabled and dev.web_router_enabled
