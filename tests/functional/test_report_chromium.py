"""The HTML report as a browser renders it: two weeks of sessions, segment entries and exits and two
campaigns on the in-memory store, written by write_report and opened in headless Chromium. The
screenshot must show something (many colours, the series' own among them), and the DOM Chromium
built must hold every series: DAU/WAU/MAU lines with a point per day, a size bar per segment with
its entries and exits, and each campaign's funnel and held-out group. Titles with <script> stay text."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kudos.core.timeutil import SECONDS_PER_DAY, day_of, format_day, format_instant
from kudos.ingest.push import record_push_events
from kudos.ingest.sessions import ingest_sessions
from kudos.ingest.track import track_users
from kudos.report.gather import write_report
from kudos.report.svg import SERIES_COLORS
from kudos.segments.sweep import run_sweep
from tests.campaign_world import NOW, SETTINGS, World, rules
from tests.pngread import read_png
from tests.report_dom import Node, parse, points, series

pytestmark = pytest.mark.chromium

DAYS = 15
USERS = 40
HOSTILE = "<script>document.title='pwned'</script>"
RULES = f"""
segment vips "VIPs {HOSTILE}" {{ attr.vip = true }}
segment regulars "Regulars" {{ sessions(last 7 days) >= 3 }}
campaign thank_vips "Thanks {HOSTILE}" {{
    audience vips
    send on entry
    holdout 30%
    conversion event "claimed_reward" within 3 days
    push {{
        title "Thank you {HOSTILE}"
        body "{{{{ attr.coins | default: 500 }}}} coins"
    }}
}}
campaign welcome_regulars "Welcome back" {{
    audience regulars
    send on entry
    push {{
        title "Good to see you"
        body "Keep it up"
    }}
}}
"""
BROWSER_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    "--window-size=1200,2400",
]


def two_weeks() -> World:
    """Each day: most users open a session, two more become VIPs (and get the thank-you unless held
    out), some sent ones open it, convert or opt out; on day 9 four VIPs stop being VIPs; a sweep each night."""
    world = World(rules(RULES))
    for n in range(USERS):
        world.token(f"u-{n}", device_id=f"d-{n}", token=f"t-{n}")
    for day in range(DAYS):
        sessions = [
            {
                "session_id": f"s-{n}-{day}",
                "device_id": f"d-{n}",
                "user_id": f"u-{n}",
                "started_at": format_instant(world.now - 60),
            }
            for n in range(USERS)
            if (n + day) % 3 and n < 10 + 2 * day
        ]
        if sessions:
            ingest_sessions(world.store, world.segments, SETTINGS, world.now, {"sessions": sessions})
        for n in (2 * day, 2 * day + 1):
            world.track(f"u-{n}", vip=True)
        if day == 9:
            for n in range(4):
                world.track(f"u-{n}", vip=False)
        for send in world.drain():
            if send is None or send.status != "sent":
                continue
            user = send_user(world, send.send_id)
            if int(user[2:]) % 2 == 0:
                opened = {
                    "type": "opened",
                    "user_id": user,
                    "campaign_id": send.campaign,
                    "time": format_instant(world.now),
                }
                record_push_events(world.store, world.segments, SETTINGS, world.now, {"events": [opened]})
            if int(user[2:]) % 10 == 5:
                opted_out = {"type": "opted_out", "user_id": user, "time": format_instant(world.now + 60)}
                record_push_events(world.store, world.segments, SETTINGS, world.now, {"events": [opted_out]})
        for n in range(0, 2 * day + 2, 3):
            event = {"external_id": f"u-{n}", "name": "claimed_reward", "time": format_instant(world.now)}
            track_users(world.store, world.segments, SETTINGS, world.now, {"events": [event]})
        world.now += SECONDS_PER_DAY
        run_sweep(world.store, world.segments, world.now - 12 * 3600, world.clock)
    return world


def send_user(world: World, send_id: str) -> str:
    for n in range(USERS):
        if any(send.send_id == send_id for send in world.sends(f"u-{n}")):
            return f"u-{n}"
    raise AssertionError(f"no user has send {send_id}")


def run_browser(chromium: str, profile: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [chromium, *BROWSER_FLAGS, f"--user-data-dir={profile}", *arguments],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def near(colour: tuple[int, ...], hex_colour: str, tolerance: int = 12) -> bool:
    wanted = tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return all(abs(a - b) <= tolerance for a, b in zip(colour, wanted, strict=True))


def rects(nodes: list[Node], **svg: str) -> list[str]:
    return [node.attrs["data-series"] for node in nodes if node.tag == "rect" and node.within("svg", **svg)]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    world = two_weeks()
    out = tmp_path_factory.mktemp("report") / "report.html"
    first = format_day(day_of(NOW))
    write_report(out, world.store, world.segments, world.now, settings=SETTINGS, date_from=first)
    return out


def test_the_screenshot_shows_the_charts(chromium: str, report: Path, tmp_path: Path) -> None:
    page = report
    screenshot = tmp_path / "report.png"
    run_browser(chromium, tmp_path / "profile", f"--screenshot={screenshot}", page.as_uri())
    image = read_png(screenshot.read_bytes())
    assert (image.width, image.height) == (1200, 2400)
    colours = image.pixels()
    assert len(colours) > 50, f"a blank page: {len(colours)} colour(s)"
    for series_name in ("dau", "wau", "mau", "members", "entered", "exited"):
        assert any(near(colour, SERIES_COLORS[series_name]) for colour in colours), f"no {series_name} pixel"


def test_the_dom_holds_every_series(chromium: str, report: Path, tmp_path: Path) -> None:
    page = report
    dom = run_browser(chromium, tmp_path / "profile", "--dump-dom", page.as_uri()).stdout
    nodes = parse(dom)
    # No script ran, and the titles with <script> in them are text.
    assert not [node for node in nodes if node.tag == "script"]
    assert "<title>kudos report," in dom
    headings = " ".join(node.text for node in nodes if node.tag == "h3")
    assert f"VIPs {HOSTILE}" in headings
    assert f"Thanks {HOSTILE}" in headings
    days = DAYS + 1  # the first day to the day of `now`
    for name in ("dau", "wau", "mau"):
        (line,) = series(nodes, "polyline", name)
        assert len(points(line)) == days
    (dau,) = series(nodes, "polyline", "dau")
    assert len({y for _, y in points(dau)}) > 3, "DAU varies from day to day"
    sizes = {bar.attrs["data-segment"]: bar for bar in series(nodes, "rect", "members")}
    assert set(sizes) == {"vips", "regulars"}
    assert all(float(bar.attrs["width"]) > 0 for bar in sizes.values())
    for name in ("vips", "regulars"):
        assert len(series(nodes, "rect", "entered", data_segment=name)) == days
        assert len(series(nodes, "rect", "exited", data_segment=name)) == days
        (size,) = series(nodes, "polyline", "size", data_segment=name)
        assert len(points(size)) == days
    exits = [float(bar.attrs["height"]) for bar in series(nodes, "rect", "exited", data_segment="vips")]
    assert sum(height > 0 for height in exits) == 1  # the day four VIPs left
    assert rects(nodes, data_campaign="thank_vips", data_chart="funnel") == [
        "triggers",
        "sent",
        "delivered",
        "opens",
        "conversions",
    ]
    assert rects(nodes, data_campaign="thank_vips", data_chart="holdout") == [
        "held_out",
        "control_conversions",
    ]
    # No conversion line: the funnel stops at opened, the control group has no conversion bar.
    assert rects(nodes, data_campaign="welcome_regulars", data_chart="funnel") == [
        "triggers",
        "sent",
        "delivered",
        "opens",
    ]
    widths = {
        node.attrs["data-series"]: float(node.attrs["width"])
        for node in nodes
        if node.tag == "rect" and node.within("svg", data_campaign="thank_vips")
    }
    assert widths["triggers"] >= widths["sent"] > widths["opens"] > 0
    assert widths["held_out"] > 0
    assert series(nodes, "circle", "lift", data_campaign="thank_vips")
    (opt_outs, *_) = [node for node in nodes if node.attrs.get("data-figure") == "opt-outs"]
    assert "Opt-outs: 0 " not in opt_outs.text
