"""The DynamoDB backends local runs and tests use: embedded (moto) and DynamoDB Local (Java)."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from kudos.core.settings import Settings
from kudos.local import LocalError
from kudos.local.dynamodb import (
    DynamoDBLocalError,
    create_local_tables,
    dynamodb_client,
    dynamodb_endpoint,
    dynamodb_local,
    embedded_dynamodb,
    find_dynamodb_local,
)

FAST_JVM = ["-XX:TieredStopAtLevel=1"]


def java_processes_on(port: int) -> list[int]:
    """Pids of live processes whose command line runs DynamoDB Local on ``port`` (Linux /proc)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            arguments = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            b"-port" in arguments
            and str(port).encode() in arguments
            and any(b"DynamoDBLocal" in a for a in arguments)
        ):
            pids.append(int(cmdline.parent.name))
    return pids


def accepts_connections(url: str) -> bool:
    port = int(url.rsplit(":", 1)[1])
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_the_fixture_gives_each_test_its_own_tables(dynamodb) -> None:
    tables = dynamodb.client.list_tables()["TableNames"]

    assert dynamodb.settings.users_table in tables
    assert dynamodb.settings.activity_table in tables
    assert dynamodb.settings.users_table != "kudos-users"
    assert dynamodb.settings.dynamodb_endpoint_url == dynamodb.endpoint_url
    ttl = dynamodb.client.describe_time_to_live(TableName=dynamodb.settings.activity_table)
    assert ttl["TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLED"


def test_creating_the_tables_twice_is_harmless(dynamodb) -> None:
    create_local_tables(dynamodb.endpoint_url, dynamodb.settings)

    item = {"pk": {"S": "U#u:1"}, "sk": {"S": "P"}}
    dynamodb.client.put_item(TableName=dynamodb.settings.users_table, Item=item)
    stored = dynamodb.client.get_item(TableName=dynamodb.settings.users_table, Key=item)
    assert stored["Item"] == item


def test_the_embedded_dynamodb_stops_with_its_block() -> None:
    with embedded_dynamodb() as url:
        assert dynamodb_client(url).list_tables()["TableNames"] is not None
    assert not accepts_connections(url)


def test_an_endpoint_url_and_a_data_directory_exclude_each_other(tmp_path: Path) -> None:
    with pytest.raises(LocalError, match="not both"), dynamodb_endpoint("http://127.0.0.1:1", tmp_path):
        pass


@pytest.fixture
def dynamodb_local_installed(ddblocal_endpoint: str) -> None:
    """Requires what ddblocal_endpoint requires (skipped without it, failed under CI=true)."""


@pytest.mark.ddblocal
@pytest.mark.usefixtures("dynamodb_local_installed")
def test_dynamodb_local_persists_in_its_data_directory_and_leaves_no_process(tmp_path: Path) -> None:
    settings = Settings(users_table="persisted-users", activity_table="persisted-activity")
    with dynamodb_local(tmp_path / "data", jvm_options=FAST_JVM) as url:
        port = int(url.rsplit(":", 1)[1])
        assert java_processes_on(port)
        create_local_tables(url, settings)

    assert java_processes_on(port) == []
    assert not accepts_connections(url)
    # Restarted on the same directory: the tables are back. Leaving the block by an exception
    # stops it too.
    ports: list[int] = []
    tables: list[str] = []

    def restart_and_fail() -> None:
        with dynamodb_local(tmp_path / "data", jvm_options=FAST_JVM) as url:
            ports.append(int(url.rsplit(":", 1)[1]))
            tables.extend(dynamodb_client(url).list_tables()["TableNames"])
            raise RuntimeError("inside")

    with pytest.raises(RuntimeError, match="inside"):
        restart_and_fail()
    assert {"persisted-users", "persisted-activity"} <= set(tables)
    assert java_processes_on(ports[0]) == []


def children_of(pid: int) -> list[int]:
    """Pids of the live processes whose parent is ``pid`` (Linux /proc)."""
    children = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ")".
            state, ppid = stat_file.read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, ValueError):
            continue
        if int(ppid) == pid and state != "Z":
            children.append(int(stat_file.parent.name))
    return children


def is_running(pid: int) -> bool:
    """Alive and not a zombie (a container's init may be slow to reap an orphan, or never reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.ddblocal
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
@pytest.mark.usefixtures("dynamodb_local_installed")
def test_dynamodb_local_dies_with_kudos_serve_even_on_sigkill(tmp_path: Path) -> None:
    # SIGKILL runs no cleanup at all: only the kernel can take the JVM down with its parent.
    root = Path(__file__).resolve().parents[2]
    command = [sys.executable, "-m", "kudos.cli", "serve", "--data", str(tmp_path / "data")]
    command += ["--port", "0", "--sweep-every", "0"]
    server = subprocess.Popen(
        command,
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    java: list[int] = []
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()  # printed once DynamoDB Local answers
        assert banner.startswith("kudos serve:"), banner + server.stdout.read()
        java = [pid for pid in children_of(server.pid) if b"DynamoDBLocal" in cmdline(pid)]
        assert len(java) == 1
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
        deadline = time.monotonic() + 5
        while is_running(java[0]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not is_running(java[0]), "DynamoDB Local outlived kudos serve"
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        for pid in java:
            if is_running(pid):
                os.kill(pid, signal.SIGKILL)


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def start(**options: Any) -> None:
    with dynamodb_local(**options):
        pass


def fake_java(tmp_path: Path, script: str) -> str:
    path = tmp_path / "java"
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


@pytest.fixture
def jar_installed() -> None:
    try:
        find_dynamodb_local()
    except DynamoDBLocalError as error:
        pytest.skip(str(error))


@pytest.mark.usefixtures("jar_installed")
def test_a_failed_start_reports_what_java_said(tmp_path: Path) -> None:
    java = fake_java(tmp_path, 'echo "Error: Unable to access jarfile" >&2; exit 1')

    with pytest.raises(DynamoDBLocalError, match=r"(?s)exited with code 1.*Unable to access jarfile"):
        start(java=java)


@pytest.mark.usefixtures("jar_installed")
def test_a_start_that_never_answers_times_out_and_is_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    java = fake_java(tmp_path, f'echo $$ > {pid_file}; echo "starting..."; exec sleep 60')

    with pytest.raises(DynamoDBLocalError, match=r"(?s)did not answer.*starting"):
        start(java=java, timeout=1)
    assert not Path(f"/proc/{pid_file.read_text().strip()}").exists()
