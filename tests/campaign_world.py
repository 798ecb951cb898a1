"""A campaign world on the in-memory store, for the campaign and results tests: users tracked,
tokens registered, sends drained through the sender, pushes recorded."""

from __future__ import annotations

from typing import Any

from dsl import SegmentSet, compile_sources
from kudos.campaigns.sender import deliver
from kudos.core.identity import UserKey
from kudos.core.records import SendRecord, UserRecords
from kudos.core.settings import Settings
from kudos.core.timeutil import parse_instant
from kudos.ingest.push import register_token
from kudos.ingest.track import track_users
from kudos.segments.membership import reevaluate
from kudos.segments.sweep import run_sweep
from kudos.store.memory import MemoryStore, RecordingPush

NOW = parse_instant("2026-11-22T12:00:00Z")
SETTINGS = Settings()

RULES = """
segment vips "VIPs" { attr.vip = true }
campaign thank_vips "Thanks" {
    audience vips
    send on entry
    holdout 0%
    push {
        title "Thank you, {{ first_name | default: 'friend' }}!"
        body "{{ attr.coins | default: 500 }} coins"
        deep_link "myapp://rewards"
    }
}
"""


def rules(text: str = RULES) -> SegmentSet:
    return compile_sources([("rules.seg", text)])


class World:
    def __init__(self, segments: SegmentSet) -> None:
        self.store = MemoryStore()
        self.push = RecordingPush()
        self.segments = segments
        self.now = NOW
        # Existing users are swept once before the tests' entries, so the campaign's first sweep
        # (every current member) is behind them.
        run_sweep(self.store, segments, self.now, self.clock)

    def clock(self) -> float:
        return self.now

    def track(self, user_id: str, **attributes: Any) -> None:
        body = {"attributes": [{"external_id": user_id, **attributes}]}
        track_users(self.store, self.segments, SETTINGS, self.now, body)

    def token(self, user_id: str, device_id: str = "d-1", token: str = "tok-1") -> None:
        body = {
            "user_id": user_id,
            "device_id": device_id,
            "platform": "ios",
            "token": token,
            "enabled": True,
        }
        register_token(self.store, self.segments, self.now, body)

    def drain(self) -> list[SendRecord | None]:
        done = []
        for message in self.store.send_queue.take():
            done.append(deliver(self.store, self.push, self.segments, message, self.clock, self.reevaluate))
        return done

    def reevaluate(self, user: UserRecords, at: float) -> None:
        reevaluate(self.store, self.segments, user, at, "ingest")

    def sends(self, user_id: str) -> list[SendRecord]:
        return list(self.store.users.load_user(UserKey.of_user(user_id)).sends.values())
