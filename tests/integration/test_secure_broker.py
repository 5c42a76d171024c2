"""The broker closed as production closes it: SCRAM-SHA-512 logins and ACLs (issue 10).

A second local KRaft broker runs with SASL and the standard authorizer; the whole pipeline
(worker through Faust, sink, producer, admin) works with the app's credentials from the
environment, a client without them or with a wrong password gets nothing, and the app's
user cannot touch a topic outside its own prefix.
"""

from __future__ import annotations

import secrets
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError

from nlp.pii import Pii
from pipeline.infra import kafka_admin, kafka_local, store
from pipeline.infra.kafka_auth import client_kwargs
from pipeline.infra.settings import Settings, pii_key
from tests.integration.conftest import ROOT, TEST_VAR, SinkRunner, WorkerProcess, count, free_port, wait_until
from tests.integration.helpers import send, simulated

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def secure(base_settings: Settings) -> Iterator[Settings]:
    var = TEST_VAR / "sasl"
    shutil.rmtree(var, ignore_errors=True)
    (var / "kafka").mkdir(parents=True)
    shared_libs = ROOT / "var" / "kafka" / "libs"
    if shared_libs.is_dir():
        (var / "kafka" / "libs").symlink_to(shared_libs, target_is_directory=True)
    port = free_port()
    tag = uuid.uuid4().hex[:8]
    s = base_settings.with_(
        var_dir=var,
        kafka_port=port,
        kafka_controller_port=free_port(),
        kafka_bootstrap=f"127.0.0.1:{port}",
        kafka_local_sasl=True,
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_username="salespulse-app",
        kafka_password=secrets.token_urlsafe(16),
        topic_prefix=f"sec{tag}-",
        clickhouse_database=f"sec_{tag}",
    )
    kafka_local.start(s)
    try:
        yield s
    finally:
        kafka_local.stop(s)
        shutil.rmtree(var, ignore_errors=True)


def test_no_credentials_or_a_wrong_password_gets_nothing(secure: Settings) -> None:
    assert kafka_local.broker_ready(secure.kafka_bootstrap, timeout=3) is False  # plaintext client
    wrong = {**client_kwargs(secure), "sasl_plain_password": "not-the-password"}
    assert kafka_local.broker_ready(secure.kafka_bootstrap, timeout=3, auth=wrong) is False
    assert kafka_local.broker_ready(secure.kafka_bootstrap, timeout=10, auth=client_kwargs(secure)) is True


def test_the_app_user_cannot_touch_topics_outside_its_prefix(secure: Settings) -> None:
    admin = KafkaAdminClient(bootstrap_servers=secure.kafka_bootstrap, **client_kwargs(secure))
    try:
        with pytest.raises(KafkaError):
            admin.create_topics([NewTopic("someone-else.events", 1, 1)])
        assert not [t for t in admin.list_topics() if not t.startswith(secure.topic_prefix)]
    finally:
        admin.close()


def test_the_pipeline_runs_end_to_end_on_the_closed_broker(secure: Settings, tmp_path: Path) -> None:
    kafka_admin.ensure_topics(secure)
    exp = simulated(41, days=2, customers=30, bad_rate=0.02, settings=secure)
    worker = WorkerProcess(secure, tmp_path / "worker.log").start()
    sink = SinkRunner(secure, Pii(pii_key(secure))).start()
    db = store.connect(secure)
    try:
        send(secure, exp.messages)
        wait_until(
            lambda: (
                count(db, "SELECT count() FROM events FINAL") == len(exp.good_ids)
                and count(db, "SELECT count() FROM dead_letters FINAL") == exp.n_bad
                and count(db, "SELECT count() FROM customer_health FINAL") == len(exp.customers)
            ),
            timeout=150,
            what="every event, dead letter and score through the SASL broker",
            state=lambda: worker.dump()[-3000:],
        )
        assert secure.kafka_password not in worker.log_path.read_text(errors="replace")
    finally:
        worker.stop()
        sink.stop()
        db.close()
