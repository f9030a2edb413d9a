"""Prometheus metrics of the media server, in one registry served at /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()

SESSIONS_ACTIVE = Gauge("marionette_sessions_active", "Sessions with a live peer connection", registry=REGISTRY)
SESSIONS_REJECTED = Counter(
    "marionette_sessions_rejected", "Offers refused", ["reason"], registry=REGISTRY
)
FRAMES_IN = Counter("marionette_frames_in", "Driver frames received from peers", registry=REGISTRY)
FRAMES_OUT = Counter("marionette_frames_out", "Avatar frames produced for peers", registry=REGISTRY)
FRAMES_DROPPED = Counter(
    "marionette_frames_dropped",
    "Driver frames dropped (stale: replaced by a newer frame before the model took it)",
    ["reason"],
    registry=REGISTRY,
)
FRAMES_NO_FACE = Counter("marionette_frames_no_face", "Driver frames without a face", registry=REGISTRY)
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.033, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0)
STAGE_SECONDS = Histogram(
    "marionette_stage_seconds", "Wall time of one pipeline stage per batch", ["stage"],
    buckets=_LATENCY_BUCKETS, registry=REGISTRY,
)
FRAME_LATENCY = Histogram(
    "marionette_frame_latency_seconds",
    "Server-side latency of a frame: decoded driver frame in slot -> avatar frame ready",
    buckets=_LATENCY_BUCKETS, registry=REGISTRY,
)
BATCH_SIZE = Histogram(
    "marionette_batch_size", "Frames per model call", buckets=(1, 2, 4, 8, 16, 32, 64), registry=REGISTRY
)
ROOMS_OPEN = Gauge("marionette_rooms_open", "Avatar rooms with participants (or created, not yet joined)",
                   registry=REGISTRY)
ROOM_PARTICIPANTS = Gauge("marionette_room_participants", "Participants in all rooms", registry=REGISTRY)
RELAY_FANOUT = Gauge("marionette_relay_fanout", "Avatar streams relayed to other room participants",
                     registry=REGISTRY)
# --sfu janus: this server's share of the rooms (the rooms themselves live in Janus, across servers).
SFU_PUBLISHERS = Gauge("marionette_sfu_publishers", "Avatars this server publishes into Janus VideoRooms",
                       registry=REGISTRY)
SFU_WATCHES = Gauge("marionette_sfu_watches", "Janus feeds this server's callers are subscribed to",
                    registry=REGISTRY)
SFU_ROOMS_CREATED = Counter("marionette_sfu_rooms_created", "Janus VideoRooms this server created",
                            registry=REGISTRY)
SFU_SUBSCRIPTIONS = Counter("marionette_sfu_subscriptions", "Janus subscriptions set up for callers",
                            registry=REGISTRY)
SFU_ERRORS = Counter("marionette_sfu_errors", "Janus failures: publish, subscribe, request, janus_lost",
                     ["kind"], registry=REGISTRY)
TASK_RESTARTS = Counter("marionette_task_restarts", "Background tasks restarted by the supervisor after dying",
                        ["task"], registry=REGISTRY)
BATCH_FAILURES = Counter("marionette_batch_failures", "Model batches that raised (then retried per session)",
                         registry=REGISTRY)
SESSIONS_FAILED = Counter("marionette_sessions_failed", "Sessions closed because the model failed on their frames",
                          registry=REGISTRY)
