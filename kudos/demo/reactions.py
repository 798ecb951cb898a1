"""How the demo's simulated users answer a push: most devices report it delivered, some users open it,
some of those claim the reward, a few opt out. Each reaction is a request the app or the backend
would send (push events, a track call), sent later in the replay at its own instant.

Deterministic: each user's reaction to a send is drawn from a random generator seeded by the demo's
seed and the send id, so a run is the same every time whatever order the sends were made in.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from kudos.core.timeutil import format_instant
from kudos.demo.population import Archetype, DemoUser, Population, Request
from kudos.store.ports import PushMessage

PUSH_EVENTS_PATH = "/v1/push/events"
TRACK_PATH = "/v1/users/track"
CONVERSION_EVENT = "claimed_reward"


@dataclass(frozen=True, slots=True)
class Temper:
    """A user's chances, per push: opening it, converting once opened, opting out."""

    opens: float
    converts: float
    opts_out: float


TEMPERS: dict[Archetype, Temper] = {
    Archetype.POWER: Temper(0.55, 0.6, 0.01),
    Archetype.REGULAR: Temper(0.35, 0.45, 0.02),
    Archetype.CASUAL: Temper(0.2, 0.3, 0.04),
    Archetype.LAPSED: Temper(0.1, 0.2, 0.06),
    Archetype.NEW: Temper(0.4, 0.4, 0.03),
    Archetype.ANONYMOUS: Temper(0.1, 0.1, 0.05),
    Archetype.CONVERTED: Temper(0.35, 0.45, 0.02),
}
# A campaign that pushes daily wears users out: their chance of opting out is multiplied by this.
EAGER_CAMPAIGN_WEARINESS = 6.0
DELIVERED_SHARE = 0.93  # the rest never report delivery (app killed, OS batching)


class Reactions:
    """Who holds each push token, and what they do when it receives a push."""

    def __init__(self, population: Population, eager_campaigns: Iterable[str] = ()) -> None:
        self.seed = population.seed
        self.eager = frozenset(eager_campaigns)
        by_device = {user.device_id: user for user in population.users}
        self.by_token: dict[str, DemoUser] = {}
        for request in population.requests:
            if request.kind == "push_token":
                user = by_device.get(str(request.body["device_id"]))
                if user is not None:
                    self.by_token[str(request.body["token"])] = user

    def to(self, token: str, message: PushMessage, sent_at: float) -> list[Request]:
        """The requests that follow a push to ``token`` at ``sent_at`` (none for a token not the demo's)."""
        user = self.by_token.get(token)
        if user is None:
            return []
        rng = random.Random(f"{self.seed}/{message.send_id}")
        temper = TEMPERS[user.archetype]
        ids = {"device_id": user.device_id, **({"user_id": user.user_id} if user.user_id else {})}
        push = {"campaign_id": message.campaign_id, "send_id": message.send_id}
        requests = []

        def event(kind: str, at: float, **fields: str) -> Request:
            body = {"events": [{"type": kind, "time": format_instant(at), **ids, **fields}]}
            return Request("POST", PUSH_EVENTS_PATH, body, at + rng.uniform(1, 90), f"push_{kind}")

        if rng.random() < DELIVERED_SHARE:
            requests.append(event("delivered", sent_at + rng.uniform(1, 20), **push))
        if rng.random() < temper.opens:
            opened = sent_at + rng.expovariate(1 / 1800)
            requests.append(event("opened", opened, **push))
            if user.user_id is not None and rng.random() < temper.converts:
                claimed = opened + rng.uniform(30, 900)
                body = {
                    "events": [
                        {
                            "external_id": user.user_id,
                            "name": CONVERSION_EVENT,
                            "time": format_instant(claimed),
                        }
                    ]
                }
                requests.append(Request("POST", TRACK_PATH, body, claimed + rng.uniform(1, 60), "conversion"))
        weariness = EAGER_CAMPAIGN_WEARINESS if message.campaign_id in self.eager else 1.0
        if rng.random() < temper.opts_out * weariness:
            requests.append(event("opted_out", sent_at + rng.uniform(600, 20 * 3600)))
        return requests
