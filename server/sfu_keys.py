"""Room keys every avatar server derives alike (--sfu janus): shared room state without a protocol of our own.

From the room link (the unguessable token in /?room=...) and the deployment's room-key secret
(MARIONETTE_ROOM_KEY_SECRET), every server computes the same Janus room number and pin, so a caller who lands
on any server joins the same Janus room; without that secret neither can be guessed from the link. The room's
Janus secret (needed to destroy it) derives from its number, so any of our servers can expire a room it finds
in Janus's list. The key is not Janus's API secret: whoever can talk to Janus must still not hold every
room's pin and secret (nor the other way round).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass


def _derive(key: str, purpose: str, token: str) -> bytes:
    return hmac.new(key.encode(), f"{purpose}:{token}".encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class RoomKeys:
    """What every server derives from a room link: the Janus room number, its pin and its secret."""

    token: str
    number: int
    pin: str
    secret: str

    @classmethod
    def of(cls, token: str, key: str) -> RoomKeys:
        number = int.from_bytes(_derive(key, "room", token)[:6], "big")  # 48 bits: exact in JSON everywhere
        return cls(token, number, _derive(key, "pin", token).hex()[:24], room_secret(key, number))


def room_secret(key: str, number: int) -> str:
    """The room's Janus secret (destroy, edit): from its number, so expiry can destroy rooms found in the list."""
    return _derive(key, "secret", str(number)).hex()[:32]
