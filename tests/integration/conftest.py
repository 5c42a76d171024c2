"""Real Apache Kafka (a dedicated test broker on 19092) and real chDB, started once a session.

Each test gets fresh topic names (a prefix), its own consumer groups and its own ClickHouse
database; the pytest process opens one chDB folder, as chDB allows one per process.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from nlp.pii import Pii
from pipeline.infra import kafka_admin, kafka_local, store
from pipeline.infra.settings import Settings, pii_key, to_env
from pipeline.infra.sink import Sink

ROOT = Path(__file__).resolve().parents[2]
TEST_VAR = ROOT / "var" / "test"
KEY = "integration-test-key-0123456789"


def settings_env(s: Settings) -> dict[str, str]:
    return {**os.environ, **to_env(s)}


@pytest.fixture(scope="session")
def base_settings() -> Iterator[Settings]:
    kroot = TEST_VAR / "kafka"
    leftover = Settings(var_dir=TEST_VAR, kafka_port=19092, kafka_controller_port=19093)
    kafka_local.stop(leftover)  # a broker left by an interrupted session must not lose its folder under it
    shutil.rmtree(kroot / "data", ignore_errors=True)
    shutil.rmtree(TEST_VAR / "clickhouse", ignore_errors=True)
    (kroot).mkdir(parents=True, exist_ok=True)
    shared_libs = ROOT / "var" / "kafka" / "libs"
    if shared_libs.is_dir() and not (kroot / "libs").exists():
        (kroot / "libs").symlink_to(shared_libs, target_is_directory=True)
    s = Settings(
        kafka_bootstrap="127.0.0.1:19092",
        kafka_port=19092,
        kafka_controller_port=19093,
        var_dir=TEST_VAR,
        clickhouse_dsn=f"chdb://{TEST_VAR / 'clickhouse'}",
        pii_hmac_key=KEY,
        sink_batch_seconds=0.3,
        state_flush_seconds=5.0,  # tests wait for acknowledged offsets: half the default
        absence_interval=1.0,
        model_dir=TEST_VAR / "models",  # rule-based scores unless a test brings its own model
        source_idle_seconds=3.0,
    )
    started = kafka_local.start(s)
    yield s
    if started:
        kafka_local.stop(s)


@pytest.fixture
def settings(base_settings: Settings) -> Settings:
    tag = uuid.uuid4().hex[:8]
    s = base_settings.with_(topic_prefix=f"t{tag}-", clickhouse_database=f"t_{tag}")
    kafka_admin.ensure_topics(s)
    return s


@pytest.fixture
def pii(settings: Settings) -> Pii:
    return Pii(pii_key(settings))


@pytest.fixture
def db(settings: Settings) -> Iterator[Any]:
    client = store.connect(settings)
    yield client
    client.close()


class WorkerProcess:
    """`salespulse worker` as a real child process, so it can be killed like in production."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        out = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "worker"],
            env=settings_env(self.settings),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        out.close()
        return self

    def dump(self) -> str:
        """Ask the worker to log its asyncio task stacks (SIGUSR2); return the log's tail."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGUSR2)
            time.sleep(2)
        return self.log_path.read_text(errors="replace")[-20000:]

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class SinkRunner:
    """The sink in this process (chDB: one folder per process), on its own event loop."""

    def __init__(self, settings: Settings, pii: Pii) -> None:
        self.client = store.connect(settings)
        self.sink = Sink(settings, self.client, pii)
        self.loop = asyncio.new_event_loop()
        self.task: asyncio.Task[None] | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        self.task = self.loop.create_task(self.sink.run())
        try:
            self.loop.run_until_complete(self.task)
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # surfaced to the test through .error
            self.error = exc

    def start(self) -> SinkRunner:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.sink.stop)
        self.thread.join(60)

    def crash(self) -> None:
        """Cancel mid-flight: nothing flushed or committed on the way out."""
        assert self.task is not None
        self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(60)


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def make(**changes: Any) -> WorkerProcess:
        w = WorkerProcess(settings.with_(**changes), tmp_path / "worker.log").start()
        started.append(w)
        return w

    yield make
    for w in started:
        w.stop()


@pytest.fixture
def sink(settings: Settings, pii: Pii) -> Iterator[Callable[..., SinkRunner]]:
    started: list[SinkRunner] = []

    def make(**changes: Any) -> SinkRunner:
        r = SinkRunner(settings.with_(**changes), pii).start()
        started.append(r)
        return r

    yield make
    for r in started:
        if r.thread.is_alive():
            r.stop()


def wait_until(
    cond: Callable[[], bool], timeout: float = 90.0, what: str = "condition", state: Callable[[], Any] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}" + (f": {state()}" if state else ""))


def count(db: Any, sql: str, **params: Any) -> int:
    return int(db.query(sql, parameters=params).result_rows[0][0])


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServeRunner:
    """`salespulse serve` (sink, notifier, lag watcher, API and console) in this process."""

    def __init__(self, settings: Settings) -> None:
        from pipeline.infra.serve import Serve

        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.serve = Serve(settings)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.api_port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
        except BaseException as exc:  # surfaced to the test through .error
            self.error = exc

    async def _main(self) -> None:
        from pipeline.infra.serve import Serve

        self.serve = Serve(self.settings)  # its asyncio.Event belongs to this loop
        await self.serve.run()

    def start(self) -> ServeRunner:
        import httpx

        self.thread.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)
            if self.error is not None:
                raise self.error
        raise AssertionError("serve did not come up")

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.serve.stop)
        self.thread.join(60)
