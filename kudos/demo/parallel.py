"""The demo's replay in more than one process, as AWS runs more than one Lambda instance at once.

Requests of different users commute: each reads and writes its own users' partitions, and
concurrent requests leave the state of some serial order (docs/data-model.md). So the replay sends
a *wave* of consecutive requests of distinct users at once, dealt by the work they carry between
itself and worker processes (each with its own handlers and DynamoDB client, on the same
DynamoDB), then goes on in order. The sweeps, the sends held for later and the users' answers to pushes run alone, between
waves, as in the serial replay: a wave never reaches past the next of them.

Who a request is about comes from its body: every object that names a user (``user_id``,
``external_id``) or a device (``device_id``) ties those together, over the whole population, as
sessions, identify and token registration tie a device to its user on the server.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import signal
import traceback
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kudos.core.settings import Settings
    from kudos.demo.population import Request
    from kudos.demo.run import Step

# Requests in one wave per process at most: the sends and answers they cause wait until the
# wave is done.
WAVE_PER_PROCESS = 16
MAX_WORKERS = 3
_IDENTITY_KEYS = {"user_id": "u", "external_id": "u", "device_id": "d"}


def worker_count() -> int:
    """Worker processes beside this one: one per further core (none on one core), at most MAX_WORKERS."""
    return max(0, min(MAX_WORKERS, (os.cpu_count() or 1) - 1))


def _objects(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for inner in value.values():
            yield from _objects(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _objects(inner)


def _identities(body: Any) -> list[list[str]]:
    """The identities each object of ``body`` names together."""
    named = []
    for item in _objects(body):
        ids = [
            f"{_IDENTITY_KEYS[key]}:{item[key]}" for key in _IDENTITY_KEYS if isinstance(item.get(key), str)
        ]
        if ids:
            named.append(ids)
    return named


def identity_groups(requests: Sequence[Request]) -> list[frozenset[str] | None]:
    """For each request, the groups of tied identities it touches; None when it names nobody (it
    then runs alone)."""
    parent: dict[str, str] = {}

    def root(identity: str) -> str:
        parent.setdefault(identity, identity)
        while parent[identity] != identity:
            parent[identity] = parent[parent[identity]]
            identity = parent[identity]
        return identity

    named = [_identities(request.body) for request in requests]
    for objects in named:
        for ids in objects:
            for other in ids[1:]:
                parent[root(other)] = root(ids[0])
    return [frozenset(root(i) for ids in objects for i in ids) or None for objects in named]


def wave_end(
    requests: Sequence[Request],
    start: int,
    groups: Sequence[frozenset[str] | None],
    before: float | None,
    processes: int,
    *,
    limit: int | None = None,
) -> int:
    """The end of the wave from ``start`` for ``processes``: the following requests of users none
    before them in the wave touches, received before ``before`` (the next thing that runs alone)."""
    limit = limit or processes * WAVE_PER_PROCESS
    first = groups[start]
    end = start + 1
    if first is None:
        return end
    touched = set(first)
    while end < len(requests) and end - start < limit:
        mine = groups[end]
        if mine is None or not touched.isdisjoint(mine):
            break
        if before is not None and requests[end].received_at >= before:
            break
        touched |= mine
        end += 1
    return end


def work_of(request: Request) -> int:
    """A request's work, roughly: the items it carries (sessions, attributes, events...), plus one."""
    return 1 + sum(len(value) for value in request.body.values() if isinstance(value, list))


def deal(wave: Sequence[Request], hands: int) -> list[list[int]]:
    """The wave's requests (their indexes, in wave order) for each of ``hands`` processes, so that
    each has about the same work: the largest first, each to the least loaded so far (hand 0 is
    this process's, and takes ties)."""
    loads = [0] * hands
    dealt: list[list[int]] = [[] for _ in range(hands)]
    for index in sorted(range(len(wave)), key=lambda index: -work_of(wave[index])):
        hand = loads.index(min(loads))
        loads[hand] += work_of(wave[index])
        dealt[hand].append(index)
    return [sorted(indexes) for indexes in dealt]


class Workers:
    """Worker processes, each replaying the requests it is given with handlers of its own.

    Spawned at once, so that their imports overlap what the demo does before it needs them
    (starting DynamoDB Local); ``start`` then tells them where it runs."""

    def __init__(self, count: int) -> None:
        # Spawned, not forked: the demo has threads (the local SQS and SNS), and a fork copies
        # their locks in whatever state they are.
        context = multiprocessing.get_context("spawn")
        self._connections: list[Connection] = []
        self._processes = []
        for _ in range(count):
            mine, theirs = context.Pipe()
            process = context.Process(target=_work, args=(theirs,), daemon=True)
            process.start()
            theirs.close()
            self._connections.append(mine)
            self._processes.append(process)

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self._connections)

    def start(self, settings: Settings) -> None:
        """Settings and environment as the handlers here see them (local_runtime's)."""
        for connection in self._connections:
            connection.send((settings, dict(os.environ)))

    def submit(self, index: int, requests: list[Request]) -> None:
        self._connections[index].send(requests)

    def results(self, index: int) -> list[Step]:
        outcome, payload = self._connections[index].recv()
        if outcome == "failed":
            raise RuntimeError(f"a replay worker failed:\n{payload}")
        steps: list[Step] = payload
        return steps

    def close(self) -> None:
        for connection in self._connections:
            with contextlib.suppress(OSError):
                connection.send(None)
        for process in self._processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()


def _work(connection: Connection) -> None:
    """A worker's life: its settings, the demo's API on its own store, then the requests it gets,
    until None (or until the demo is gone: its end of the pipe closed)."""
    from kudos.demo.run import DemoApi, run_request
    from kudos.local.routes import find_template, load_template
    from kudos.store.dynamo import Store

    # Ctrl-C reaches the whole process group: the demo stops its workers itself (Workers.close).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    template = load_template(find_template())
    with contextlib.redirect_stdout(io.StringIO()) as ignored:
        api: DemoApi | None = None
        while True:
            try:
                message = connection.recv()
            except EOFError:
                return
            if message is None:
                return
            if api is None:
                settings, environment = message
                os.environ.clear()
                os.environ.update(environment)
                api = DemoApi(template, settings, Store(settings))
                continue
            try:
                steps = [run_request(api, request) for request in message]
            except Exception:
                connection.send(("failed", traceback.format_exc()))
                return
            connection.send(("done", steps))
            # What the handlers printed (their EMF metrics) is not the demo's to show.
            ignored.seek(0)
            ignored.truncate()
