"""The status data channel from the caller's side: a ping gets a pong. Messages do not keep a session alive
(only its camera's video does, server.housekeeping): else a peer that pings but sends no video holds a place
for ever."""

from __future__ import annotations

import json

from aiortc import RTCDataChannel

from rtc import messages
from server.session import Session


def serve_status_channel(session: Session, channel: RTCDataChannel) -> None:
    session.status_channel = channel
    for callback in session.on_channel_open:
        callback()

    @channel.on("message")
    def on_message(message: str | bytes) -> None:
        try:
            data = json.loads(message)
        except (TypeError, ValueError):
            return
        if isinstance(data, dict) and data.get("type") == messages.PING:
            channel.send(json.dumps({"type": messages.PONG, "t": data.get("t")}))
