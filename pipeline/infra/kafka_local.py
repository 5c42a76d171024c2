"""A local single-node Apache Kafka (KRaft), resolved from Maven Central and run by us.

No distribution tarball: the broker is the ``org.apache.kafka:kafka_2.13`` artifact; Maven
copies it and its runtime jars into ``var/kafka/libs``; ``kafka.tools.StorageTool`` formats
the log directory once and ``kafka.Kafka`` runs the broker. Data lives in
``var/kafka/data`` and survives restarts.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pipeline.infra.kafka_auth import client_kwargs
from pipeline.infra.settings import Settings


class KafkaLocalError(RuntimeError):
    pass


@dataclass(frozen=True)
class Paths:
    root: Path

    @property
    def libs(self) -> Path:
        return self.root / "libs"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def config(self) -> Path:
        return self.root / "server.properties"

    @property
    def pid(self) -> Path:
        return self.root / "kafka.pid"

    @property
    def cluster_id(self) -> Path:
        return self.root / "cluster-id"


def paths(settings: Settings) -> Paths:
    return Paths((settings.var_dir / "kafka").resolve())


def _require(tool: str, hint: str) -> str:
    found = shutil.which(tool)
    if not found:
        raise KafkaLocalError(f"`{tool}` not found on PATH. {hint}")
    return found


def java_bin() -> str:
    java = os.path.join(os.environ["JAVA_HOME"], "bin", "java") if os.environ.get("JAVA_HOME") else None
    if java and os.path.exists(java):
        return java
    return _require(
        "java", "Kafka 4.x needs JDK 17 or newer: on Debian/Ubuntu `apt-get install -y openjdk-17-jdk-headless`."
    )


def fetch(settings: Settings, *, quiet: bool = True) -> Path:
    """Resolve the broker jars with Maven (cached in ~/.m2 and var/kafka/libs)."""
    p = paths(settings)
    if p.libs.is_dir() and any(p.libs.glob("kafka_2.13-*.jar")):
        return p.libs
    mvn = _require("mvn", "Install Apache Maven 3.8+: on Debian/Ubuntu `apt-get install -y maven`.")
    java_bin()
    pom = resources.files("pipeline.infra").joinpath("broker/pom.xml")
    cmd = [mvn, "-B", "-f", str(pom), "dependency:copy-dependencies", f"-Dlibs.dir={p.libs}"]
    if quiet:
        cmd.insert(1, "-q")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603  # fixed argv, no shell
    if proc.returncode != 0 or not any(p.libs.glob("kafka_2.13-*.jar")):
        raise KafkaLocalError(f"Maven could not resolve the Kafka jars:\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}")
    return p.libs


ADMIN_USER = "salespulse-admin"  # the local SASL broker's own user (super user); the app gets ACLs


def _admin_password(p: Paths) -> str:
    """The local SASL broker's admin password: random once, kept 0600 beside its data."""
    f = p.root / "admin-password"
    if not f.exists():
        import secrets

        p.root.mkdir(parents=True, exist_ok=True)
        f.touch(mode=0o600)
        f.write_text(secrets.token_urlsafe(24))
    return f.read_text().strip()


def _security(settings: Settings, p: Paths) -> list[str]:
    port = settings.kafka_port
    if not settings.kafka_local_sasl:
        return [
            f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{settings.kafka_controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        ]
    # As production closes the broker: clients authenticate with SCRAM-SHA-512 and are
    # authorised by ACLs (nothing is allowed where no ACL says so). The controller listener
    # stays on loopback inside the node; in KRaft its principal must be a super user.
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{ADMIN_USER}" password="{_admin_password(p)}";'
    )
    return [
        f"listeners=SASL_PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{settings.kafka_controller_port}",
        f"advertised.listeners=SASL_PLAINTEXT://127.0.0.1:{port}",
        "inter.broker.listener.name=SASL_PLAINTEXT",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
        "sasl.enabled.mechanisms=SCRAM-SHA-512",
        "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512",
        f"listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config={jaas}",
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        f"super.users=User:{ADMIN_USER};User:ANONYMOUS",
        "allow.everyone.if.no.acl.found=false",
    ]


def _properties(settings: Settings, p: Paths) -> str:
    cport = settings.kafka_controller_port
    return "\n".join(
        [
            "# Written by `salespulse kafka start`; single-node KRaft for local use and tests.",
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.bootstrap.servers=127.0.0.1:{cport}",
            *_security(settings, p),
            "controller.listener.names=CONTROLLER",
            f"log.dirs={p.data}",
            f"num.partitions={settings.partitions}",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=4",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=true",
            "log.retention.hours=168",
            "log.segment.bytes=134217728",
            "message.max.bytes=4194304",
            "",
        ]
    )


def _classpath(p: Paths) -> str:
    return str(p.libs / "*")


def _java_cmd(settings: Settings, p: Paths, main: str, *args: str) -> list[str]:
    log4j = resources.files("pipeline.infra").joinpath("broker/log4j2.yaml")
    return [
        java_bin(),
        f"-Xms{settings.kafka_heap}",
        f"-Xmx{settings.kafka_heap}",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log4j}",
        f"-Dkafka.logs.dir={p.logs}",
        "-cp",
        _classpath(p),
        main,
        *args,
    ]


def _format(settings: Settings, p: Paths) -> None:
    if (p.data / "meta.properties").exists():
        return
    p.data.mkdir(parents=True, exist_ok=True)
    if not p.cluster_id.exists():
        # Kafka cluster ids are 16 random bytes, URL-safe base64 without padding.
        import base64

        p.cluster_id.write_text(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))
    cid = p.cluster_id.read_text().strip()
    # "--cluster-id=ID": an id may start with "-" (base64url), which argparse would take for an option
    cmd = _java_cmd(
        settings, p, "kafka.tools.StorageTool", "format", f"--cluster-id={cid}", "-c", str(p.config), "--standalone"
    )
    if settings.kafka_local_sasl:  # the broker's own SCRAM user must exist before its first start
        cmd += ["--add-scram", f"SCRAM-SHA-512=[name={ADMIN_USER},password={_admin_password(p)}]"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603  # fixed argv
    if proc.returncode != 0:
        raise KafkaLocalError(f"formatting Kafka storage failed:\n{proc.stdout}\n{proc.stderr}")


def _pid(p: Paths) -> int | None:
    try:
        pid = int(p.pid.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        # Reap it if it is our own exited child (demo starts and stops it in one process).
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return None
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def broker_ready(bootstrap: str, timeout: float = 5.0, auth: dict[str, object] | None = None) -> bool:
    """True when the broker answers a metadata request, not merely when the port is open."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        ms = int(timeout * 1000)  # bootstrap has its own clock (30 s by default): a refused login would wait it out
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap, request_timeout_ms=ms, bootstrap_timeout_ms=ms, **(auth or {})
        )
    except (KafkaError, OSError, ValueError):
        return False
    try:
        admin.list_topics()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


def status(settings: Settings) -> dict[str, object]:
    p = paths(settings)
    pid = _pid(p)
    return {
        "pid": pid,
        "managed": pid is not None,
        "listening": port_open("127.0.0.1", settings.kafka_port),
        "bootstrap": settings.kafka_bootstrap,
        "data": str(p.data),
        "jars": str(p.libs),
    }


def start(settings: Settings, *, wait: float = 90.0) -> bool:
    """Start the broker unless one already answers; return True if we started it."""
    p = paths(settings)
    if _pid(p) is not None or port_open("127.0.0.1", settings.kafka_port):
        if broker_ready(settings.kafka_bootstrap, timeout=wait, auth=_own_auth(settings)):
            if settings.kafka_local_sasl:
                provision_app_user(settings)
            return False
        raise KafkaLocalError(f"something listens on port {settings.kafka_port} but is not answering as Kafka")
    fetch(settings)
    p.root.mkdir(parents=True, exist_ok=True)
    p.logs.mkdir(parents=True, exist_ok=True)
    p.config.write_text(_properties(settings, p))
    _format(settings, p)
    out = open(p.logs / "server.out", "ab")  # handed to the child process, closed below
    proc = subprocess.Popen(  # noqa: S603  # fixed argv
        _java_cmd(settings, p, "kafka.Kafka", str(p.config)),
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    out.close()
    p.pid.write_text(str(proc.pid))
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (p.logs / "server.out").read_text(errors="replace")[-3000:]
            raise KafkaLocalError(f"Kafka exited with code {proc.returncode}:\n{tail}")
        if port_open("127.0.0.1", settings.kafka_port) and broker_ready(
            settings.kafka_bootstrap, auth=_own_auth(settings)
        ):
            if settings.kafka_local_sasl:
                provision_app_user(settings)
            return True
        time.sleep(0.5)
    raise KafkaLocalError(f"Kafka did not become ready within {wait:.0f}s; see {p.logs}/server.log")


def stop(settings: Settings, *, wait: float = 60.0) -> bool:
    """Controlled shutdown (SIGTERM), then SIGKILL if it hangs; True if a broker was stopped."""
    p = paths(settings)
    pid = _pid(p)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if _pid(p) is None:
            break
        time.sleep(0.25)
    else:
        os.kill(pid, signal.SIGKILL)
    p.pid.unlink(missing_ok=True)
    return True


def _own_auth(settings: Settings) -> dict[str, object]:
    """How we talk to the local broker as its operator: its admin user when it runs SASL."""
    if not settings.kafka_local_sasl:
        return client_kwargs(settings)
    return {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": ADMIN_USER,
        "sasl_plain_password": _admin_password(paths(settings)),
    }


def provision_app_user(settings: Settings) -> None:
    """The app's SCRAM user on the local SASL broker (created, or its password set from the
    environment) and its ACLs: everything on its own topics (the topic prefix; every topic
    where there is none) and its consumer groups, nothing else."""
    from kafka import KafkaAdminClient
    from kafka.admin import (
        ACL,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePattern,
        ResourceType,
        UserScramCredentialUpsertion,
    )

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, **_own_auth(settings))
    principal = f"User:{settings.kafka_username}"
    topics = (
        ResourcePattern(ResourceType.TOPIC, settings.topic_prefix, ACLResourcePatternType.PREFIXED)
        if settings.topic_prefix
        else ResourcePattern(ResourceType.TOPIC, "*", ACLResourcePatternType.LITERAL)
    )
    groups = ResourcePattern(ResourceType.GROUP, settings.group_worker, ACLResourcePatternType.PREFIXED)
    try:
        user = UserScramCredentialUpsertion(settings.kafka_username, "SCRAM-SHA-512", settings.kafka_password)
        errors = {k: v for k, v in admin.alter_user_scram_credentials([user]).items() if v}
        if errors:
            raise KafkaLocalError(f"could not set the SCRAM user {settings.kafka_username}: {errors}")
        result = admin.create_acls(
            [ACL(principal, "*", ACLOperation.ALL, ACLPermissionType.ALLOW, r) for r in (topics, groups)]
        )
        if result.get("failed"):
            raise KafkaLocalError(f"could not grant ACLs to {principal}: {result['failed']}")
    finally:
        admin.close()
