"""The Slack Events API workload: a realistic mix of signed ``event_callback`` requests.

Each request is built the way Slack sends it (envelope, headers, v0 signature); see
tests/conftest.py (``slack_headers``, ``event_envelope``) and
https://api.slack.com/authentication/verifying-requests-from-slack.

Mix (by default): 85 % ``message`` in a public channel without a mention (the bot reads it,
records the event, answers nothing), 10 % ``app_mention`` saying "help" (the bot answers in the
thread through its outbox, so the fake Slack gets a ``chat.postMessage``), 5 % ``reaction_added``.
Users and channels come from small pools, one of the users is a person in
examples/organisation.yaml (U0ADA0001), the others are unknown to the directory.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import uuid
from dataclasses import dataclass

TEAM_ID = "T0001"
BOT_USER_ID = "U0BOT"  # what the fake Slack's auth.test answers
KNOWN_USER = "U0ADA0001"  # ada, the evangelist in examples/organisation.yaml
USERS = [KNOWN_USER] + [f"U0BENCH{n:03d}" for n in range(1, 40)]
CHANNELS = [f"C0BENCH{n:03d}" for n in range(1, 41)]
REACTIONS = ["thumbsup", "tada", "eyes", "heart", "rocket", "white_check_mark"]
TEXTS = [
    "Has anyone seen the new admissions video? It is doing really well on LinkedIn.",
    "Reminder: open day photos are in the shared drive, please tag the research office.",
    "Great write-up on the graduation ceremony, thanks everyone who helped!",
    "Can someone from comms check the alt text on yesterday's post before it goes out?",
    "We hit 10k followers this morning :tada:",
    "Lunch talk at 12:30 in room 2.14, slides will be posted afterwards.",
]

MESSAGE, MENTION, REACTION = "message", "app_mention", "reaction_added"
DEFAULT_MIX = ((MESSAGE, 0.85), (MENTION, 0.10), (REACTION, 0.05))


@dataclass(frozen=True)
class SignedRequest:
    kind: str
    event_id: str
    body: bytes
    headers: dict[str, str]


def sign(secret: str, timestamp: int, body: str) -> str:
    """Slack's v0 signature: 'v0=' + hex HMAC-SHA256(secret, 'v0:{ts}:{body}')."""
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def _rich_text(text: str) -> list[dict[str, object]]:
    return [
        {
            "type": "rich_text",
            "block_id": uuid.uuid4().hex[:5],
            "elements": [
                {"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}
            ],
        }
    ]


def _event(kind: str, rng: random.Random, ts: str) -> dict[str, object]:
    user = rng.choice(USERS)
    channel = rng.choice(CHANNELS)
    if kind == MESSAGE:
        text = rng.choice(TEXTS)
        return {
            "type": "message",
            "user": user,
            "text": text,
            "blocks": _rich_text(text),
            "client_msg_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "team": TEAM_ID,
            "channel": channel,
            "event_ts": ts,
            "ts": ts,
            "channel_type": "channel",
        }
    if kind == MENTION:
        text = f"<@{BOT_USER_ID}> help"
        return {
            "type": "app_mention",
            "user": user,
            "text": text,
            "blocks": _rich_text(text),
            "client_msg_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "team": TEAM_ID,
            "channel": channel,
            "event_ts": ts,
            "ts": ts,
        }
    if kind == REACTION:
        return {
            "type": "reaction_added",
            "user": user,
            "reaction": rng.choice(REACTIONS),
            "item_user": rng.choice(USERS),
            "item": {"type": "message", "channel": channel, "ts": ts},
            "event_ts": ts,
        }
    raise ValueError(f"unknown event kind {kind!r}")


def build_requests(
    *,
    secret: str,
    count: int,
    rate: float,
    start_wall: float,
    tag: str,
    seed: int = 1,
    mix: tuple[tuple[str, float], ...] = DEFAULT_MIX,
) -> list[SignedRequest]:
    """`count` signed requests, the i-th stamped with the wall-clock second it is due to be sent.

    Built before the clock starts so the generator only has to send bytes. The timestamp is the
    request's planned send time (Slack refuses requests more than 5 minutes off), so a run of any
    length stays within the window as long as the generator keeps to its schedule.
    """
    rng = random.Random(seed)
    kinds = [k for k, _ in mix]
    weights = [w for _, w in mix]
    requests: list[SignedRequest] = []
    for i in range(count):
        due_wall = start_wall + i / rate
        kind = rng.choices(kinds, weights)[0]
        # Unique per event: seconds from the planned time, the index as the micro part.
        ts = f"{int(due_wall)}.{i % 1_000_000:06d}"
        event_id = f"Ev{tag}{i:07d}"
        envelope = {
            "token": "verification-token-unused",
            "team_id": TEAM_ID,
            "context_team_id": TEAM_ID,
            "context_enterprise_id": None,
            "api_app_id": "A0EVANGELIST",
            "event": _event(kind, rng, ts),
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(due_wall),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": TEAM_ID,
                    "user_id": BOT_USER_ID,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": f"4-{uuid.UUID(int=rng.getrandbits(128)).hex}",
        }
        body = json.dumps(envelope, separators=(",", ":"))
        timestamp = int(due_wall)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": sign(secret, timestamp, body),
        }
        requests.append(SignedRequest(kind, event_id, body.encode(), headers))
    return requests
