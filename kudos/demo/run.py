"""`kudos demo`: generate an app population, replay its traffic through the real handlers, report.

Every request goes the way it would on AWS: template.yaml's routes pick the function, the request
becomes an API Gateway payload 2.0 event, the Lambda handler runs, and its result becomes the HTTP
response. DynamoDB is the embedded one (``local_runtime()``) unless ``--endpoint-url`` names another.
The server clock is pinned to each request's receive instant, so 60 days replay in minutes and
the acceptance window, late uploads and clock corrections behave as they would have on the day.

The replay also runs SweepFunction (through the same local Lambda runner, on EventBridge's scheduled
event) every 6 simulated hours, so what time alone changes in segments, scheduled campaigns and
sends held for quiet hours happen as they would.

The steps are plain functions over a ``DemoContext``: ``run_demo`` ingests and returns the context
(the API, the store, the pinned "now"), and each report after it (``REPORTS``: active users,
segments, entries and exits per day) is one call on that context.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import io
import itertools
import json
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from kudos.core.timeutil import SECONDS_PER_DAY, format_day, format_instant, parse_instant
from kudos.demo.parallel import MAX_WORKERS, Workers, deal, worker_count
from kudos.demo.population import (
    DEFAULT_DAYS,
    DEFAULT_NOW,
    DEFAULT_SEED,
    DEFAULT_USERS,
    MIN_DAYS,
    SESSIONS_PATH,
    Population,
    Request,
    generate,
)
from kudos.local.environment import DATA_RULES_SUBDIR, DEFAULT_DATA_DIR

if TYPE_CHECKING:
    from rich.console import Console

    from kudos.core.settings import Settings
    from kudos.demo.parallel import Workers
    from kudos.local.routes import Template
    from kudos.store.dynamo import Store
    from kudos.store.ports import PushMessage, QueuedSend

TABLE_DAYS = 30
ACTIVE_USERS_PATH = "/v1/metrics/active-users"
SWEEP_FUNCTION = "SweepFunction"
SEND_FUNCTION = "SendFunction"
SEND_BATCH = 10  # the event source mapping's batch size (template.yaml)
# The demo's second campaign (kudos/demo/segments/): it pushes top users daily, wears them out,
# and its guardrail pauses it.
EAGER_CAMPAIGNS = ("daily_top_nudge",)
# The replay runs SweepFunction every 6 simulated hours (UTC 00, 06, 12, 18), and once more at "now": what time
# alone changes (last_session ageing out, windows sliding) is found then, as every SweepEveryMinutes
# on AWS. Membership changes are at most 6 hours late here, instead of 15 minutes.
SWEEP_EVERY = SECONDS_PER_DAY / 4
# The segment whose entries and exits the demo explains first (the others when nobody left it).
EXPLAINED_SEGMENT = "top_users"
PAGE_LIMIT = "1000"
# Piped output (make demo | tee, CI logs) is not cut to 80 columns: the tables keep their width.
PIPED_WIDTH = 200

# Routes the app calls with an app key; every other route takes a server key (api.md).
SDK_PREFIXES = ("/v1/sessions", "/v1/push/")


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: Any


@dataclass(frozen=True, slots=True)
class Step:
    """What one request (or sweep, or send) led to at its instant ``at``: the reply, the sends
    held for later with their instants, and the pushes published (endpoint, message)."""

    at: float
    reply: Reply | None = None
    delayed: tuple[tuple[float, QueuedSend], ...] = ()
    published: tuple[tuple[str, PushMessage], ...] = ()


class DemoApi:
    """The local gateway (API Gateway and Lambda in this process), on a server clock the demo sets.

    Installs the handlers' services (``kudos.runtime``) with ``store`` and a clock that reads
    ``self.now``; ``request(..., at=instant)`` moves the clock, then sends the request.
    """

    def __init__(self, template: Template, settings: Settings, store: Store) -> None:
        from kudos.local.gateway import LocalGateway
        from kudos.runtime import Services, install
        from kudos.store.memory import MemorySendQueue, RecordingPush

        self.settings = settings
        self.store = store
        self.now = 0.0
        self.gateway = LocalGateway(template, region=settings.region)
        # Sends wait in this process, and SendFunction takes them as SQS's event source would; pushes
        # are recorded, and the simulated users answer them (kudos.demo.reactions).
        self.send_queue = MemorySendQueue()
        store.send_queue = self.send_queue  # type: ignore[assignment]
        self.push = RecordingPush()
        self._published = 0  # pushes already handed on by follow_up
        install(Services(settings=settings, store=store, clock=lambda: self.now, push=self.push))

    def follow_up(self) -> Step:
        """Make the sends queued since the last call (SendFunction, as the queue's event source
        would at once); the step at the clock: the sends delayed, and the pushes published."""
        delayed: list[tuple[float, QueuedSend]] = []
        while True:
            queued, self.send_queue.messages = self.send_queue.messages, []
            delayed += [(self.now + delay, send) for send, delay in queued if delay > 0]
            due = [send for send, delay in queued if delay <= 0]
            if not due:
                break
            self.send(due, at=self.now)
        published = self.push.published[self._published :]
        self._published = len(self.push.published)
        return Step(self.now, delayed=tuple(delayed), published=tuple(published))

    def send(self, sends: list[QueuedSend], *, at: float) -> None:
        """SendFunction on an SQS event holding ``sends``, the clock at ``at``."""
        from kudos.local.sqs import sqs_event
        from kudos.store.send_queue import send_message

        for start in range(0, len(sends), SEND_BATCH):
            bodies = [json.dumps(send_message(send)) for send in sends[start : start + SEND_BATCH]]
            result = self.invoke(
                SEND_FUNCTION, sqs_event(bodies, queue="SendQueue", region=self.settings.region), at=at
            )
            if result.get("batchItemFailures"):
                raise RuntimeError(f"{SEND_FUNCTION} failed on {len(result['batchItemFailures'])} message(s)")

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: dict[str, str] | None = None,
        at: float | None = None,
    ) -> Reply:
        if at is not None:
            self.now = at
        result = self.gateway.handle(
            method,
            path,
            urlencode(query or {}),
            [("content-type", "application/json"), *self._key_header(path)],
            json.dumps(body).encode() if body is not None else b"",
            now=datetime.fromtimestamp(self.now, UTC),
        )
        if result.failure:
            # The client sees API Gateway's bare 5xx; the report shows why (the first line, not the traceback).
            return Reply(result.response.status, {"message": result.failure.splitlines()[0]})
        text = result.response.body.decode()
        return Reply(result.response.status, json.loads(text) if text else None)

    def invoke(self, function_name: str, event: Any, *, at: float | None = None) -> Any:
        """Run a function of the template on ``event`` (the local Lambda runner), the clock at ``at``."""
        if at is not None:
            self.now = at
        function = self.gateway.template.function(function_name)
        # Its EMF metrics are printed for CloudWatch: not part of the demo's report.
        with contextlib.redirect_stdout(io.StringIO()):
            return self.gateway.lambda_runtime.invoke(function, event)

    def _key_header(self, path: str) -> list[tuple[str, str]]:
        """The key a real client would send, when the environment configures keys."""
        keys = self.settings.app_keys if path.startswith(SDK_PREFIXES) else self.settings.server_keys
        return [("x-api-key", min(keys))] if keys else []


@dataclass(frozen=True, slots=True)
class Problem:
    """A non-2xx response or an item error, with the request that got it."""

    request: Request
    status: int
    message: str
    deliberate: bool = False


@dataclass
class Summary:
    users: int = 0
    requests: int = 0
    requests_by_kind: Counter[str] = field(default_factory=Counter)
    sessions_sent: int = 0  # session items in uploads, retries included
    sessions_accepted: int = 0  # new sessions, as the API counted them
    duplicates: int = 0  # as the API detected them
    late_sessions: int = 0  # uploaded more than a day after they started
    skewed_uploads: int = 0  # from a device clock an hour or more off
    item_errors: list[Problem] = field(default_factory=list)
    failures: list[Problem] = field(default_factory=list)  # non-2xx responses
    sweeps: int = 0
    sweep_kinds: Counter[str] = field(default_factory=Counter)
    sweep_changes: int = 0
    sweep_failures: list[str] = field(default_factory=list)
    pushes: int = 0  # published by SendFunction (to the recording push service)
    elapsed: float = 0.0

    @property
    def unexpected_item_errors(self) -> list[Problem]:
        return [problem for problem in self.item_errors if not problem.deliberate]


@dataclass
class DemoContext:
    """What the steps after ingest work with: the API as the app sees it, and the pinned now."""

    population: Population
    api: DemoApi
    settings: Settings
    store: Store
    now: float
    console: Console
    summary: Summary
    membership: MembershipReport | None = None


@dataclass(frozen=True, slots=True)
class ExplainedChange:
    """One user who entered a segment and later left it, explained at both instants."""

    segment: str
    user: dict[str, str]
    entered: dict[str, Any]  # the change as GET .../changes lists it
    exited: dict[str, Any]
    at_entry: dict[str, Any]  # GET .../explain at the entry instant
    at_exit: dict[str, Any]


@dataclass
class MembershipReport:
    """Entries and exits per UTC day and segment, as GET /v1/segments/{name}/changes lists them."""

    days: list[str]
    segments: list[str]
    counts: dict[str, dict[str, tuple[int, int]]]  # day -> segment -> (entered, exited)
    changes: dict[str, list[dict[str, Any]]]  # segment -> every change, oldest first
    explained: ExplainedChange | None = None


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="generate an app population, replay it through the handlers, print active users and segments",
        description="Generate a seeded app population over the last DAYS days (power, regular, casual, "
        "lapsed, new and anonymous users; late, retried and clock-skewed uploads; backend events and "
        "purchases), replay every request through the Lambda handlers with the server clock pinned to "
        "its receive instant (and SweepFunction every 6 simulated hours), then print what GET "
        "/v1/metrics/active-users reports for the last 30 days, each segment's size, and how many users "
        "entered and left each segment per day, with one user's entry and exit explained. "
        f"'Now' is {DEFAULT_NOW:%Y-%m-%dT%H:%M:%SZ}, so the output is the same on every run. DynamoDB is "
        f"DynamoDB Local, its data kept in {DEFAULT_DATA_DIR}/ (started afresh by each demo) so that "
        f"`kudos serve --data {DEFAULT_DATA_DIR}` (make serve) shows what the demo printed; "
        "--embedded uses moto in memory instead (no Java), --endpoint-url a DynamoDB of yours.",
    )
    parser.add_argument(
        "--users", type=_at_least(1), default=DEFAULT_USERS, help=f"population size (default {DEFAULT_USERS})"
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})"
    )
    parser.add_argument(
        "--days",
        type=_at_least(MIN_DAYS),
        default=DEFAULT_DAYS,
        help=f"days of history ending now (default {DEFAULT_DAYS})",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help=f"DynamoDB Local's data directory (default {DEFAULT_DATA_DIR}, emptied first); "
        "another directory must hold no kudos data yet",
    )
    where.add_argument(
        "--endpoint-url",
        help="use this DynamoDB (e.g. an already running DynamoDB Local); tables must be empty",
    )
    where.add_argument(
        "--embedded",
        action="store_true",
        help="moto's DynamoDB in this process: no Java needed, slower, gone when the demo ends, "
        "and no --workers",
    )
    parser.add_argument(
        "--workers",
        type=_at_least(0),
        default=None,
        help="processes that replay requests of other users at the same time, beside this one, as "
        f"several Lambda instances would (default: one per further core, at most {MAX_WORKERS}; "
        "0: one request at a time)",
    )
    parser.set_defaults(run=run)


def _at_least(minimum: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"at least {minimum}")
        return value

    return parse


def run(args: argparse.Namespace) -> int:
    """Exit code 1 when a response was not 2xx or an item was refused that the demo did not spoil."""

    from kudos.core.settings import Settings
    from kudos.local.environment import in_process_runtime, local_runtime
    from kudos.local.routes import find_template, load_template

    console = demo_console()
    template = load_template(find_template())
    # The handlers' INFO logs (the sweep's "sweep done" each night) go to CloudWatch on AWS; here
    # they would bury the report. A POWERTOOLS_LOG_LEVEL of the developer's still wins.
    environment = {**template.globals_environment, "POWERTOOLS_LOG_LEVEL": "WARNING"}
    base = Settings.from_env()
    staging: Path | None = None
    data_dir = None if args.embedded or args.endpoint_url is not None else args.data or DEFAULT_DATA_DIR
    if data_dir is not None and args.data is None and data_dir.is_dir():
        # The demo's own directory: last run's data would double every figure.
        shutil.rmtree(data_dir)
    # The rules it runs with stay beside its data, where `make serve` reads them.
    rules_home = (
        data_dir / DATA_RULES_SUBDIR if data_dir is not None else Path(tempfile.mkdtemp(prefix="kudos-demo-"))
    )
    base = base.model_copy(update={"segments_dir": demo_rules(base.segments_dir, rules_home)})
    if args.embedded:
        if not os.environ.get("DAY_SHARDS"):
            # moto answers a Query by scanning the whole table, and the report queries every shard
            # of 59 days: one shard a day is 4x faster, and a demo's traffic needs no more.
            base = base.model_copy(update={"day_shards": 1})
        # The embedded DynamoDB without its HTTP server: the demo makes ~90 calls per simulated
        # user, and in process each costs about a third of a call through moto's server.
        runtime = in_process_runtime(base, template_environment=environment)
    elif args.endpoint_url is not None:
        runtime = local_runtime(
            endpoint_url=args.endpoint_url, settings=base, template_environment=environment
        )
    else:
        assert data_dir is not None
        data_dir.mkdir(parents=True, exist_ok=True)
        staging = memory_staging(data_dir)
        runtime = local_runtime(data_dir=staging or data_dir, settings=base, template_environment=environment)
    # moto in this process is not shared with others.
    workers = 0 if args.embedded else worker_count() if args.workers is None else args.workers
    try:
        # Spawned before DynamoDB Local starts: their imports overlap its start.
        with Workers(workers) if workers else contextlib.nullcontext() as pool, runtime as settings:
            if pool is not None:
                pool.start(settings)
            context = run_demo(
                settings, template, console, users=args.users, seed=args.seed, days=args.days, pool=pool
            )
            print_summary(context)
            # Each report is one call on the context, inside the runtime (the API needs its DynamoDB).
            for report in REPORTS:
                report(context)
    finally:
        if staging is not None:
            assert data_dir is not None
            # DynamoDB Local has stopped: its database is complete, and moves where make serve reads it.
            for database in staging.iterdir():
                shutil.move(database, data_dir / database.name)
            staging.rmdir()
    summary = context.summary
    return 1 if summary.failures or summary.unexpected_item_errors or summary.sweep_failures else 0


# Where DynamoDB Local keeps the demo's database while it runs, when the machine has one: a file
# system in memory (tmpfs), on which its writes take 2 ms instead of 3 on a disk.
MEMORY_FILESYSTEM = Path("/dev/shm")


STAGING_PREFIX = "kudos-demo-"


def memory_staging(data_dir: Path, memory: Path = MEMORY_FILESYSTEM) -> Path | None:
    """A new directory in memory for the database that will end in ``data_dir``; None when there is
    no such file system, or ``data_dir`` already holds a database (it is then used in place).

    Its name holds this process's id: what a demo killed before it could move its database (a
    SIGKILL) would hold memory until reboot, and is removed here once that process is gone."""
    if any(data_dir.glob("*.db")) or not (memory.is_dir() and os.access(memory, os.W_OK)):
        return None
    for left in memory.glob(f"{STAGING_PREFIX}*-*"):
        owner = left.name.removeprefix(STAGING_PREFIX).partition("-")[0]
        if owner.isdigit() and not _running(int(owner)):
            shutil.rmtree(left, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=memory))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's
    return True


# The demo's own campaign files, added to the shipped rules (segments/) for its run only.
DEMO_RULES_DIR = Path(__file__).parent / "segments"


def demo_rules(deployed: Path, target: Path) -> Path:
    """``target`` filled with the deployed rules (``deployed``) plus the demo's campaign."""
    target.mkdir(parents=True, exist_ok=True)
    for source in (*sorted(deployed.glob("*.seg")), *sorted(DEMO_RULES_DIR.glob("*.seg"))):
        shutil.copyfile(source, target / source.name)
    return target.resolve()


def run_demo(
    settings: Settings,
    template: Template,
    console: Console,
    *,
    users: int = DEFAULT_USERS,
    seed: int = DEFAULT_SEED,
    days: int = DEFAULT_DAYS,
    pool: Workers | None = None,
) -> DemoContext:
    """Generate the population and replay it (``pool``: processes beside this one, see
    ``replay``); the handlers' environment must be set (local_runtime)."""
    from kudos.store.dynamo import Store

    started = time.perf_counter()
    store = Store(settings)
    _require_empty_tables(store, settings)
    population = generate(users, days=days, seed=seed)
    api = DemoApi(template, settings, store)
    summary = replay(api, population, console, pool=pool)
    summary.elapsed = time.perf_counter() - started
    api.now = population.now
    return DemoContext(population, api, settings, store, population.now, console, summary)


def _require_empty_tables(store: Store, settings: Settings) -> None:
    """The figures are the population's only if the tables hold nothing else."""
    from kudos.local import LocalError

    if not store.is_empty():
        raise LocalError(
            f"the tables at {settings.dynamodb_endpoint_url} already hold data; the demo needs "
            "empty tables (run it on the embedded DynamoDB, or on fresh tables)"
        )


def demo_console() -> Console:
    """rich on a terminal; piped, lines as wide as they are (no wrapping at 80 columns) and no colour
    codes, unless COLUMNS says how wide."""
    import sys

    from rich.console import Console

    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        return Console()
    return Console(width=PIPED_WIDTH, no_color=True, highlight=False)


def replay(api: DemoApi, population: Population, console: Console, *, pool: Workers | None = None) -> Summary:
    """Send every request at its receive instant, in order; tally what the API answered. With
    ``pool`` (started), waves of requests of distinct users run at once in its processes too
    (kudos.demo.parallel): the same state, sooner.

    On a terminal a progress bar shows how far it got; piped (make demo | tee, CI logs), a plain
    line per simulated day, as it happens."""
    with _progress(console, population) as advance:
        return _replay(api, population, advance, pool)


def run_request(api: DemoApi, request: Request) -> Step:
    """``request`` at its receive instant, and what follows at once (the sends it queued)."""
    reply = api.request(request.method, request.path, request.body, at=request.received_at)
    follows = api.follow_up()
    return Step(follows.at, reply, follows.delayed, follows.published)


def _replay(
    api: DemoApi, population: Population, advance: Callable[[Request], None], pool: Workers | None
) -> Summary:
    """Population requests in order, interleaved with what happens at other instants: the scheduled
    sweeps, sends that wait for quiet hours to end, and the users' answers to their pushes."""
    from kudos.demo.parallel import identity_groups, wave_end
    from kudos.demo.reactions import Reactions

    summary = Summary(users=len(population.users))
    reactions = Reactions(population, EAGER_CAMPAIGNS)
    order = itertools.count()
    later: list[tuple[float, int, str, Any]] = [
        (at, next(order), "sweep", None) for at in sweep_instants(population)
    ]
    heapq.heapify(later)

    def follow(step: Step) -> None:
        """Sends held for later, and the answers of the users who got a push, into ``later``."""
        for at, send in step.delayed:
            heapq.heappush(later, (at, next(order), "send", [send]))
        for endpoint, message in step.published:
            token = endpoint.rpartition("/")[2]
            for answer in reactions.to(token, message, step.at):
                if answer.received_at <= population.now:
                    heapq.heappush(later, (answer.received_at, next(order), "answer", answer))
        summary.pushes += len(step.published)

    requests = population.requests
    groups = identity_groups(requests) if pool is not None else []
    position = 0
    while position < len(requests) or later:
        if position == len(requests) or (later and later[0][0] <= requests[position].received_at):
            at, _, kind, payload = heapq.heappop(later)
            if kind == "sweep":
                run_sweep(api, at, summary)
                follow(api.follow_up())
            elif kind == "send":
                api.send(payload, at=at)
                follow(api.follow_up())
            else:
                step = run_request(api, payload)
                assert step.reply is not None
                _tally(summary, payload, step.reply)
                follow(step)
            continue
        end = position + 1
        if pool is not None:
            end = wave_end(requests, position, groups, later[0][0] if later else None, len(pool) + 1)
        wave = requests[position:end]
        for request, step in zip(wave, _run_wave(api, pool, wave), strict=True):
            assert step.reply is not None
            _tally(summary, request, step.reply)
            advance(request)
            follow(step)
        position = end
    return summary


def _run_wave(api: DemoApi, pool: Workers | None, wave: Sequence[Request]) -> list[Step]:
    """The wave's requests dealt to this process and the workers by their work; steps in wave order."""
    if pool is None or len(wave) == 1:
        return [run_request(api, request) for request in wave]
    mine, *theirs = deal(wave, len(pool) + 1)
    for worker, indexes in enumerate(theirs):
        pool.submit(worker, [wave[index] for index in indexes])
    steps: dict[int, Step] = {index: run_request(api, wave[index]) for index in mine}
    for worker, indexes in enumerate(theirs):
        steps.update(zip(indexes, pool.results(worker), strict=True))
    return [steps[index] for index in range(len(wave))]


@contextlib.contextmanager
def _progress(console: Console, population: Population) -> Iterator[Callable[[Request], None]]:
    total = len(population.requests)
    if not console.is_terminal:
        yield _PlainProgress(console, population.days, total)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[dim]{task.fields[day]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(f"Replaying {population.days} days", total=total, day="")

        def advance(request: Request) -> None:
            progress.update(task, advance=1, day=format_day(int(request.received_at // SECONDS_PER_DAY)))

        yield advance


class _PlainProgress:
    """One line per simulated day replayed, printed when the next day starts (and flushed)."""

    def __init__(self, console: Console, days: int, total: int) -> None:
        self.console = console
        self.total = total
        self.done = 0
        self.day: int | None = None
        self.started = time.perf_counter()
        console.print(f"Replaying {days} days, {total:,} requests", soft_wrap=True)

    def __call__(self, request: Request) -> None:
        day = int(request.received_at // SECONDS_PER_DAY)
        if self.day is not None and day != self.day:
            self._line()
        self.day = day
        self.done += 1
        if self.done == self.total:
            self._line()

    def _line(self) -> None:
        assert self.day is not None
        elapsed = time.perf_counter() - self.started
        self.console.print(
            f"  replayed {format_day(self.day)}: {self.done:,}/{self.total:,} requests, {elapsed:.0f} s",
            soft_wrap=True,
        )
        self.console.file.flush()


def sweep_instants(population: Population) -> list[float]:
    """Every 6 simulated hours after the first request, and "now" (the sweep then is current)."""
    first = population.requests[0].received_at if population.requests else population.now
    instants = []
    at = (first // SWEEP_EVERY + 1) * SWEEP_EVERY
    while at < population.now:
        instants.append(at)
        at += SWEEP_EVERY
    return [*instants, population.now]


def run_sweep(api: DemoApi, at: float, summary: Summary) -> None:
    """SweepFunction on EventBridge's scheduled event for ``at``, the clock pinned there."""
    from kudos.local.schedule import scheduled_event

    try:
        result = api.invoke(SWEEP_FUNCTION, scheduled_event(at, region=api.settings.region), at=at)
    except Exception as error:
        summary.sweep_failures.append(f"{format_instant(at)}: {type(error).__name__}: {error}")
        return
    summary.sweeps += 1
    summary.sweep_kinds[str(result["kind"])] += 1
    summary.sweep_changes += int(result["changes"])


def _tally(summary: Summary, request: Request, reply: Reply) -> None:
    summary.requests += 1
    summary.requests_by_kind[request.kind] += 1
    body = reply.body if isinstance(reply.body, dict) else {}
    if not 200 <= reply.status < 300:
        summary.failures.append(Problem(request, reply.status, str(body.get("message", reply.body))))
        return
    expected = set(request.bad_items)
    for error in body.get("errors", []):
        deliberate = (error.get("input_array"), error.get("index")) in expected
        summary.item_errors.append(Problem(request, reply.status, str(error.get("message")), deliberate))
    if request.path != SESSIONS_PATH:
        return
    summary.sessions_accepted += int(body.get("new_sessions", 0))
    summary.duplicates += int(body.get("duplicates", 0))
    sessions = request.body["sessions"]
    summary.sessions_sent += len(sessions)
    skew = request.received_at - parse_instant(request.body["sent_at"])
    if abs(skew) >= 3600 and request.kind == "sessions":
        summary.skewed_uploads += 1
    for index, session in enumerate(sessions):
        if ("sessions", index) in expected:
            continue
        if request.received_at - (parse_instant(session["started_at"]) + skew) > SECONDS_PER_DAY:
            summary.late_sessions += 1


def print_summary(context: DemoContext) -> None:
    summary = context.summary
    console = context.console
    mix = context.population.archetype_counts()
    kinds = summary.requests_by_kind
    console.print()
    console.print(
        f"[bold]{summary.users:,} users[/] over {context.population.days} days: "
        + ", ".join(f"{count:,} {archetype}" for archetype, count in mix.most_common())
    )
    console.print(
        f"[bold]{summary.requests:,} requests[/] sent through the handlers: "
        + ", ".join(f"{count:,} {kind}" for kind, count in kinds.most_common())
    )
    console.print(
        f"sessions: {summary.sessions_sent:,} uploaded, [bold]{summary.sessions_accepted:,} accepted[/], "
        f"[bold]{summary.duplicates:,} duplicates detected[/]; {summary.late_sessions:,} arrived more "
        f"than a day late, {summary.skewed_uploads:,} uploads came from clocks an hour or more off"
    )
    console.print(
        f"[bold]{len(summary.item_errors)} item errors[/], {len(summary.failures)} non-2xx responses"
    )
    for problem in summary.item_errors:
        note = "deliberate" if problem.deliberate else "[red]unexpected[/]"
        request = problem.request
        console.print(f"  {_when(request)} {request.method} {request.path}: {problem.message} ({note})")
    for problem in summary.failures:
        console.print(
            f"  [red]{_when(problem.request)} {problem.request.method} {problem.request.path}: "
            f"{problem.status} {problem.message}[/]"
        )
    sweep_kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(summary.sweep_kinds.items()))
    console.print(
        f"[bold]{summary.sweeps} sweeps[/] ({SWEEP_FUNCTION} every 6 hours and now: {sweep_kinds or 'none'}) "
        f"recorded {summary.sweep_changes:,} membership changes; {len(summary.sweep_failures)} failed"
    )
    for failure in summary.sweep_failures:
        console.print(f"  [red]{failure}[/]")
    console.print(f"elapsed: {summary.elapsed:.1f} s to generate and replay")


def _when(request: Request) -> str:
    return format_instant(request.received_at)


def show_active_users(context: DemoContext, days: int = TABLE_DAYS) -> list[dict[str, Any]]:
    """Print the last ``days`` days of active-user figures, as the API reports them now."""
    from rich.table import Table

    today = int(context.now // SECONDS_PER_DAY)
    first = format_day(today - min(days, context.population.days) + 1)
    reply = context.api.request(
        "GET", ACTIVE_USERS_PATH, query={"from": first, "to": format_day(today)}, at=context.now
    )
    if reply.status != 200:
        context.console.print(f"[red]GET {ACTIVE_USERS_PATH}: {reply.status} {reply.body}[/]")
        return []
    rows: list[dict[str, Any]] = reply.body["days"]
    table = Table(
        title=f"Active users, GET {ACTIVE_USERS_PATH} at {datetime.fromtimestamp(context.now, UTC):%Y-%m-%dT%H:%M:%SZ}",
        caption="UTC days; today is still going on",
    )
    for name in ("date", "DAU", "WAU", "MAU", "new users", "sessions", "stickiness"):
        table.add_column(name, justify="left" if name == "date" else "right")
    for row in rows:
        table.add_row(
            row["date"],
            f"{row['dau']:,}",
            f"{row['wau']:,}",
            f"{row['mau']:,}",
            f"{row['new_users']:,}",
            f"{row['sessions']:,}",
            f"{row['stickiness']:.4f}",
        )
    context.console.print()
    context.console.print(table)
    return rows


def show_segments(context: DemoContext) -> dict[str, int]:
    """Each deployed segment's size now, and why one top user is in top_users, through the API."""
    from rich.table import Table

    listed = context.api.request("GET", "/v1/segments", at=context.now)
    sizes: dict[str, int] = {}
    table = Table(title="Segments (segments/*.seg), GET /v1/segments/{name}/members")
    for name in ("segment", "title", "members", "source"):
        table.add_column(name, justify="right" if name == "members" else "left")
    first_top_user: dict[str, str] | None = None
    for segment in listed.body["segments"]:
        page = context.api.request(
            "GET", f"/v1/segments/{segment['name']}/members", query={"limit": "1"}, at=context.now
        )
        sizes[segment["name"]] = page.body["count"]
        table.add_row(segment["name"], segment["title"] or "", f"{page.body['count']:,}", segment["source"])
        if segment["name"] == "top_users" and page.body["members"]:
            first_top_user = page.body["members"][0]
    context.console.print()
    context.console.print(table)
    if first_top_user is None:
        context.console.print("nobody is in top_users: nothing to explain")
        return sizes
    explained = context.api.request(
        "GET", "/v1/segments/top_users/explain", query=dict(first_top_user), at=context.now
    ).body
    who = ", ".join(f"{kind} {value}" for kind, value in first_top_user.items())
    context.console.print(f"\nWhy {who} is in top_users (GET /v1/segments/top_users/explain):")
    for clause in explained["clauses"]:
        # The clause the way the rule reads it: one under `not` counts for the user when it is false.
        mark = "[green]yes[/]" if clause["effective_result"] else "[red]no [/]"
        text = clause["effective_clause"]
        context.console.print(f"  {mark}  {text:<55} seen {json.dumps(clause['value'])}")
    return sizes


def show_membership_changes(context: DemoContext) -> MembershipReport:
    """Per simulated UTC day, how many users entered and left each segment, as the changes route
    lists them; then one user who entered and later left, explained at both instants."""
    from rich.table import Table

    listed = context.api.request("GET", "/v1/segments", at=context.now)
    names = [segment["name"] for segment in listed.body["segments"]]
    first_day = int(context.population.start // SECONDS_PER_DAY)
    days = [format_day(day) for day in range(first_day, int(context.now // SECONDS_PER_DAY) + 1)]
    counts: dict[str, dict[str, tuple[int, int]]] = {}
    changes: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for day in days:
        counts[day] = {}
        for name in names:
            found = _changes_between(context, name, f"{day}T00:00:00Z", f"{day}T23:59:59.999Z")
            counts[day][name] = (
                sum(change["change"] == "entered" for change in found),
                sum(change["change"] == "exited" for change in found),
            )
            changes[name] += reversed(found)  # oldest first
    table = Table(
        title="Segment entries and exits per UTC day, GET /v1/segments/{name}/changes?from=DAY&to=DAY",
        caption=f"+ entered, - left; by ingest as requests arrived, by {SWEEP_FUNCTION} every 6 hours",
    )
    table.add_column("date")
    for name in names:
        table.add_column(name, justify="right")
    for day in days:
        table.add_row(day, *(_cell(*counts[day][name]) for name in names))
    totals = [
        (sum(counts[day][name][0] for day in days), sum(counts[day][name][1] for day in days))
        for name in names
    ]
    table.add_section()
    table.add_row("total", *(_cell(*total) for total in totals))
    context.console.print()
    context.console.print(table)
    report = MembershipReport(days, names, counts, changes)
    report.explained = _explain_a_change(context, report)
    context.membership = report
    return report


def _changes_between(context: DemoContext, name: str, first: str, last: str) -> list[dict[str, Any]]:
    """Every change of segment ``name`` in [first, last], newest first, following `next`."""
    found: list[dict[str, Any]] = []
    query = {"from": first, "to": last, "limit": PAGE_LIMIT}
    while True:
        reply = context.api.request("GET", f"/v1/segments/{name}/changes", query=query, at=context.now)
        if reply.status != 200:
            raise RuntimeError(f"GET /v1/segments/{name}/changes: {reply.status} {reply.body}")
        found += reply.body["changes"]
        if not reply.body["next"]:
            return found
        query = {**query, "next": reply.body["next"]}


def _cell(entered: int, exited: int) -> str:
    if not entered and not exited:
        return "."
    return f"+{entered:,} -{exited:,}"


def _explain_a_change(context: DemoContext, report: MembershipReport) -> ExplainedChange | None:
    """A user whose last change in a segment is an exit after an entry, explained at both instants.

    Explain evaluates the profile as stored now at the instant given (dsl.md: `at` moves the clock,
    not the data): a user who left and never came back reads then as the rules read them then. The
    first candidate whose explanations agree with the log (in at entry, out at exit) is shown."""
    order = [EXPLAINED_SEGMENT] if EXPLAINED_SEGMENT in report.segments else []
    order += [name for name in report.segments if name != EXPLAINED_SEGMENT]
    console = context.console
    for name in order:
        for entered, exited in _entered_then_left(report.changes[name])[:5]:
            user = entered["user"]
            at_entry = _explain(context, name, user, entered["at"])
            at_exit = _explain(context, name, user, exited["at"])
            if at_entry is None or at_exit is None or not at_entry["in"] or at_exit["in"]:
                continue
            explained = ExplainedChange(name, user, entered, exited, at_entry, at_exit)
            _print_explained(console, explained)
            return explained
    console.print("\nnobody entered a segment and left it again: no change to explain")
    return None


def _entered_then_left(changes: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(entry, exit) of each user whose last change is an exit, sweep exits (time alone) first."""
    last: dict[str, dict[str, Any]] = {}
    entry: dict[str, dict[str, Any]] = {}
    for change in changes:  # oldest first
        key = json.dumps(change["user"], sort_keys=True)
        last[key] = change
        if change["change"] == "entered":
            entry[key] = change
    pairs = [
        (entry[key], change) for key, change in last.items() if change["change"] == "exited" and key in entry
    ]
    return sorted(pairs, key=lambda pair: (pair[1]["by"] != "sweep", pair[0]["at"]))


def _explain(context: DemoContext, name: str, user: dict[str, str], at: str) -> dict[str, Any] | None:
    reply = context.api.request(
        "GET", f"/v1/segments/{name}/explain", query={**user, "at": at}, at=context.now
    )
    return reply.body if reply.status == 200 else None


def _print_explained(console: Console, explained: ExplainedChange) -> None:
    who = ", ".join(f"{kind} {value}" for kind, value in explained.user.items())
    entered, exited = explained.entered, explained.exited
    console.print(
        f"\n[bold]{who}[/] entered {explained.segment} at {entered['at']} (by {entered['by']}) "
        f"and left at {exited['at']} (by {exited['by']})."
    )
    console.print(f"Why, GET /v1/segments/{explained.segment}/explain at each instant:")
    at_exit = dict(_leaf_rows(explained.at_exit))
    console.print(f"  {'entry':<5}  {'exit':<5}  {'clause':<55} seen at entry -> at exit")
    for text, (holds, value) in _leaf_rows(explained.at_entry):
        holds_then, value_then = at_exit.get(text, (holds, value))
        flipped = holds != holds_then
        marks = f"{_mark(holds)}  {_mark(holds_then)}"
        seen = f"{json.dumps(value)} -> {json.dumps(value_then)}"
        line = f"  {marks}  {text:<55} {seen}"
        console.print(f"[bold]{line}  <- flipped[/]" if flipped else line)


def _leaf_rows(explanation: dict[str, Any]) -> list[tuple[str, tuple[bool, Any]]]:
    """(the clause as the rule reads it, (whether it counts for the user, the value seen))."""
    return [
        (clause["effective_clause"], (clause["effective_result"], clause["value"]))
        for clause in explanation["clauses"]
    ]


def _mark(holds: bool) -> str:
    return "[green]yes[/]  " if holds else "[red]no[/]   "


def show_campaigns(context: DemoContext) -> dict[str, dict[str, Any]]:
    """Each campaign's triggers and their outcomes per simulated day, its results, and one push as
    it was rendered, through the campaign routes."""
    from rich.table import Table

    from kudos.local.campaigns_cli import REPORT_COLUMNS, count_text, results_line

    listed = context.api.request("GET", "/v1/campaigns", at=context.now)
    reports: dict[str, dict[str, Any]] = {}
    for campaign in listed.body["campaigns"]:
        name = campaign["name"]
        report = context.api.request("GET", f"/v1/campaigns/{name}/report", at=context.now).body
        reports[name] = report
        table = Table(
            title=f"Campaign {name} ({campaign['trigger']}, audience {campaign['audience']}): "
            f"GET /v1/campaigns/{name}/report",
            caption="by UTC day of the trigger; held = waiting for the end of the user's quiet hours",
        )
        table.add_column("date")
        for title, _ in REPORT_COLUMNS:
            table.add_column(title, justify="right")
        for day in report["days"]:
            table.add_row(day["date"], *(count_text(day[key]) for _, key in REPORT_COLUMNS))
        table.add_section()
        table.add_row("total", *(count_text(report[key]) for _, key in REPORT_COLUMNS))
        context.console.print()
        context.console.print(table)
        context.console.print(results_line(report), soft_wrap=True)
        if campaign["status"] != "active":
            context.console.print(
                f"[bold]{name} is {campaign['status']}[/] since {campaign['since']}: {campaign['reason']}",
                soft_wrap=True,
            )
        _print_a_push(context, name)
    return reports


def _print_a_push(context: DemoContext, name: str) -> None:
    page = context.api.request("GET", f"/v1/campaigns/{name}/sends", query={"limit": "50"}, at=context.now)
    sent = next((send for send in page.body.get("sends", []) if send["status"] == "sent"), None)
    if sent is None:
        return
    who = ", ".join(f"{kind} {value}" for kind, value in (sent["user"] or {}).items())
    context.console.print(
        f"one push as sent to {who} at {sent['sent_at']}: [bold]{sent['title']}[/] / {sent['body']}",
        soft_wrap=True,
    )


# Where the demo writes its pictures (`kudos report` of the demo's data).
REPORT_FILE = Path("report.html")


def write_html_report(context: DemoContext) -> Path:
    """The pictures of what was printed: `kudos report --out report.html` on the demo's data."""
    from kudos.report.gather import write_report
    from kudos.segments.queries import deployed_segments

    segments = deployed_segments(context.settings.segments_dir)
    write_report(REPORT_FILE, context.store, segments, context.now, settings=context.settings)
    context.console.print(
        f"\nwrote {REPORT_FILE} (active users, segment sizes with entries and exits, each campaign's "
        "funnel beside its holdout): open it in a browser. Then `make serve` answers with this data "
        "on http://127.0.0.1:3000, e.g. curl 'http://127.0.0.1:3000/v1/campaigns/thank_top_users/report'",
        soft_wrap=True,
    )
    return REPORT_FILE


# The reports after the replay, in order; each one call on the context (tests may add their own).
REPORTS: list[Callable[[DemoContext], object]] = [
    show_active_users,
    show_segments,
    show_membership_changes,
    show_campaigns,
    write_html_report,
]
