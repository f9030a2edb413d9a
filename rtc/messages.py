"""The status data channel's protocol: its label and the "type" of each JSON message on it.

The browser's copy is client_web/app.js (it speaks the same names).
"""

from __future__ import annotations

CHANNEL_LABEL = "status"  # the channel the caller creates before its offer

PING = "ping"  # caller -> server: {"type": "ping", "t": <caller clock>} (it does not keep a session open: video does)
PONG = "pong"  # server -> caller: {"type": "pong", "t": <the ping's t>}
STATUS = "status"  # server -> caller, twice a second: face found, fps, server time, target, counters
ROSTER = "roster"  # server -> room participant: who is shown in which tile (by transceiver mid)
CLOSED = "closed"  # server -> caller, just before the server closes the session: {"type": "closed", "reason": ...}
ROOM_STATUS = "room_status"  # server -> room participant: {"state": "reconnecting" | "restored"} (the SFU restarted)
ROOM_CLOSED = "room_closed"  # server -> room participant: the room ended (its SFU stayed away); the call goes on
