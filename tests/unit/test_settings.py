from pathlib import Path

import pytest
import yaml

from pipeline.infra.settings import DEMO_PII_KEY, ENV_VARS, Settings, SettingsError, load, pii_key

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_are_the_embedded_local_setup() -> None:
    s = load({})
    assert s.kafka_bootstrap == "127.0.0.1:9092"
    assert s.clickhouse_dsn == "chdb://./var/clickhouse"
    with pytest.raises(SettingsError, match="SALESPULSE_PII_HMAC_KEY"):
        pii_key(s)


def test_environment_overrides_with_types_checked() -> None:
    s = load({"SALESPULSE_PARTITIONS": "8", "SALESPULSE_SINK_BATCH_SECONDS": "0.75", "SALESPULSE_TOPIC_PREFIX": "t1-"})
    assert s.partitions == 8 and s.sink_batch_seconds == 0.75 and s.topic("store.notes") == "t1-store.notes"
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
        assert "kafka-init" in svc["depends_on"]  # the app's user and ACLs exist first
        assert env["SALESPULSE_KAFKA_SECURITY_PROTOCOL"].startswith("SASL")
        assert env["SALESPULSE_KAFKA_USERNAME"] == services["kafka-init"]["environment"]["SALESPULSE_KAFKA_USERNAME"]
    for name in ("kafka", "clickhouse"):
        assert "healthcheck" in services[name]
    for name in ("kafka", "kafka-init"):
        script = services[name]["entrypoint"][-1].removeprefix("/deploy/")
        assert (ROOT / "deploy" / script).is_file(), script


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


def test_the_compose_broker_is_closed_like_the_local_one_the_tests_run_on(tmp_path: Path) -> None:
    """deploy/kafka/server.properties and `salespulse kafka start` with SASL must not drift:
    the pipeline is proven on the local one (tests/integration/test_secure_broker.py)."""
    from pipeline.infra import kafka_local

    def props(text: str) -> dict[str, str]:
        lines = [ln.split("=", 1) for ln in text.splitlines() if "=" in ln and not ln.startswith("#")]
        return {k.strip(): v.strip() for k, v in lines}

    s = Settings(var_dir=tmp_path, kafka_local_sasl=True, kafka_security_protocol="SASL_PLAINTEXT")
    local = props("\n".join(kafka_local._security(s, kafka_local.paths(s))))
    compose = props((ROOT / "deploy/kafka/server.properties").read_text())
    same = [
        "sasl.enabled.mechanisms",
        "sasl.mechanism.inter.broker.protocol",
        "authorizer.class.name",
        "super.users",
        "allow.everyone.if.no.acl.found",
        "inter.broker.listener.name",
    ]
    assert {k: compose.get(k) for k in same} == {k: local[k] for k in same}
    for listener, protocol in (p.split(":") for p in compose["listener.security.protocol.map"].split(",")):
        assert protocol == ("PLAINTEXT" if listener == "CONTROLLER" else "SASL_PLAINTEXT"), listener
    jaas = compose["listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config"]
    assert jaas.replace("@ADMIN_PASSWORD@", "X") == local[
        "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config"
    ].replace(kafka_local._admin_password(kafka_local.paths(s)), "X")
