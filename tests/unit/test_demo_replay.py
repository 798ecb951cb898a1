"""How the demo replays quickly: which requests may run at once (never two that touch one user),
and where its database lives meanwhile."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from kudos.demo.parallel import deal, identity_groups, wave_end, work_of
from kudos.demo.population import Request
from kudos.demo.run import STAGING_PREFIX, memory_staging


def request(at: float, body: dict[str, Any], path: str = "/v1/sessions") -> Request:
    return Request("POST", path, body, at, "test")


def sessions(at: float, device: str, user: str | None = None) -> Request:
    item = {"session_id": f"s-{at}", "device_id": device, **({"user_id": user} if user else {})}
    return request(at, {"sent_at": "x", "sessions": [item]})


def test_a_device_and_its_user_are_one_group_once_anything_names_them_together() -> None:
    requests = [
        sessions(1, "d-1"),  # anonymous at first
        sessions(2, "d-2", "u-2"),
        request(
            3, {"aliases_to_identify": [{"external_id": "u-1", "device_id": "d-1"}]}, "/v1/users/identify"
        ),
        request(4, {"events": [{"external_id": "u-1", "name": "x"}]}, "/v1/users/track"),
    ]
    groups = identity_groups(requests)
    assert groups[0] == groups[2] == groups[3]
    first, second = groups[0], groups[1]
    assert first is not None
    assert second is not None
    assert first.isdisjoint(second)


def test_users_of_one_backend_batch_are_not_tied_together() -> None:
    batch = request(1, {"attributes": [{"external_id": "u-1"}, {"external_id": "u-2"}]}, "/v1/users/track")
    groups = identity_groups([batch, sessions(2, "d-1", "u-1"), sessions(3, "d-2", "u-2")])
    both, one, other = groups
    assert both is not None
    assert one is not None
    assert other is not None
    assert len(both) == 2
    assert one.isdisjoint(other)
    # The batch touches both: neither may run beside it.
    assert wave_end([batch, *[sessions(2, "d-1", "u-1")]], 0, groups[:2], None, 2) == 1


def test_a_wave_stops_at_a_user_already_in_it_at_what_runs_alone_and_at_its_limit() -> None:
    requests = [
        sessions(1, "d-1"),
        sessions(2, "d-2"),
        sessions(3, "d-3"),
        sessions(4, "d-1"),
        sessions(5, "d-4"),
    ]
    groups = identity_groups(requests)
    assert wave_end(requests, 0, groups, None, 2) == 3  # d-1 again at index 3
    assert wave_end(requests, 0, groups, 3.0, 2) == 2  # a sweep at 3 comes first
    assert wave_end(requests, 3, groups, None, 2) == 5
    assert wave_end(requests, 0, groups, None, 1, limit=2) == 2


def test_a_request_that_names_nobody_runs_alone() -> None:
    requests = [sessions(1, "d-1"), request(2, {"note": "nobody"}), sessions(3, "d-3")]
    groups = identity_groups(requests)
    assert groups[1] is None
    assert wave_end(requests, 0, groups, None, 2) == 1
    assert wave_end(requests, 1, groups, None, 2) == 2


def test_a_worker_ends_quietly_when_the_demo_is_gone() -> None:
    from kudos.demo.parallel import Workers

    workers = Workers(1)
    # The demo killed: its end of the pipe closes without the None that Workers.close sends.
    workers._connections[0].close()
    process = workers._processes[0]
    process.join(timeout=30)
    assert process.exitcode == 0


def test_the_demo_stages_its_database_in_memory_and_clears_what_killed_demos_left(tmp_path: Path) -> None:
    memory, data = tmp_path / "shm", tmp_path / "data"
    memory.mkdir()
    data.mkdir()
    finished = subprocess.Popen(["true"])
    finished.wait()
    left_by_dead = memory / f"{STAGING_PREFIX}{finished.pid}-x1"
    left_by_live = memory / f"{STAGING_PREFIX}{os.getpid()}-x2"
    for left in (left_by_dead, left_by_live):
        left.mkdir()
        (left / "shared-local-instance.db").write_bytes(b"")

    staging = memory_staging(data, memory)

    assert staging is not None
    assert staging.parent == memory
    assert staging.name.startswith(f"{STAGING_PREFIX}{os.getpid()}-")
    assert not left_by_dead.exists()
    assert left_by_live.exists()
    # A directory that already holds a database is used in place.
    (data / "shared-local-instance.db").write_bytes(b"")
    assert memory_staging(data, memory) is None
    assert memory_staging(tmp_path / "elsewhere", tmp_path / "no-such-memory") is None


def test_a_wave_is_dealt_so_that_each_process_has_about_the_same_work() -> None:
    backend = request(1, {"attributes": [{"external_id": f"u-{n}"} for n in range(6)]}, "/v1/users/track")
    small = [sessions(2 + n, f"d-{n}") for n in range(6)]  # work 2 each
    wave = [small[0], backend, *small[1:]]  # the backend batch: work 7
    mine, theirs = deal(wave, 2)
    assert 1 in mine  # the biggest, to this process
    assert sorted(mine + theirs) == list(range(len(wave)))
    assert mine == sorted(mine)
    assert theirs == sorted(theirs)  # each in wave order
    work = [sum(work_of(wave[index]) for index in hand) for hand in (mine, theirs)]
    assert work == [9, 10]
    assert deal(wave[:1], 3) == [[0], [], []]
    assert work_of(backend) == 7
