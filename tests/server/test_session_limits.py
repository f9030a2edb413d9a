"""The rules behind issue 19 row 1, on a fake clock: when housekeeping ends a session, what one client address may
open, and what admission charges a session that sends little. The real server runs them in test_abuse.py."""

from __future__ import annotations

import concurrent.futures

import pytest

from server.admission import FLOOR_FPS, Admission, BusyError
from server.batcher import BatcherConfig, FrameBatcher
from server.client_limits import WINDOW_S, ClientLimits
from server.errors import ApiError
from server.housekeeping import SessionLimits

LIMITS = SessionLimits(video_idle_timeout_s=5.0, max_session_s=4 * 3600.0)


@pytest.mark.parametrize(("case", "created", "last_frame", "now", "reason"), [
    ("streaming", 0.0, 99.9, 100.0, None),
    ("first frame due, within the timeout", 0.0, 0.0, 4.9, None),
    ("no first frame after set-up", 0.0, 0.0, 5.1, "no video from your camera for 5 s"),
    ("camera stopped mid-call", 0.0, 50.0, 55.5, "no video from your camera for 5 s"),
    ("just under the longest call", 0.0, 14399.9, 14399.9, None),
    ("the longest call reached, video flowing", 0.0, 14400.0, 14400.0,
     "the call reached the longest a call may last (4 h); start a new one to go on"),
])
def test_housekeeping_closes_a_session_without_video_or_past_its_length(
        case: str, created: float, last_frame: float, now: float, reason: str | None) -> None:
    assert LIMITS.reason_to_close(created, last_frame, now) == reason, case


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_client_holds_at_most_n_sessions_and_gets_its_place_back_on_close() -> None:
    limits = ClientLimits(max_sessions=2, max_offers_per_window=100, clock=FakeClock())
    for _ in range(2):
        limits.check("a")
        limits.claim("a")
    with pytest.raises(ApiError) as refused:
        limits.check("a")
    assert refused.value.status == 429 and int(refused.value.headers["Retry-After"]) > 0
    assert "2 calls open" in refused.value.message
    limits.check("b")  # another address is not affected
    limits.release("a")
    limits.check("a")


def test_offers_are_limited_over_a_sliding_minute_and_idle_clients_forgotten() -> None:
    clock = FakeClock()
    limits = ClientLimits(max_sessions=100, max_offers_per_window=3, clock=clock)
    start = clock.now
    for t in (0.0, 10.0, 20.0):
        clock.now = start + t
        limits.check("a")
        limits.claim("a")
        limits.release("a")
    clock.now = start + 25.0  # the oldest offer leaves the window at t = 60 s
    with pytest.raises(ApiError) as refused:
        limits.check("a")
    assert refused.value.status == 429 and refused.value.headers["Retry-After"] == "35"
    assert "too many calls" in refused.value.message
    clock.now = start + 60.0  # one offer left the window
    limits.check("a")
    limits.forget_idle()
    assert len(limits) == 1  # offers within the last minute are remembered
    clock.now += WINDOW_S
    limits.forget_idle()
    assert len(limits) == 0  # nothing is kept for a client that holds no session and made no recent offer


def test_memory_stays_bounded_with_many_one_offer_clients() -> None:
    clock = FakeClock()
    limits = ClientLimits(max_sessions=2, max_offers_per_window=12, clock=clock)
    for index in range(10_000):
        clock.now += 0.01
        client = f"10.{index // 65536}.{index // 256 % 256}.{index % 256}"
        limits.check(client)
        limits.claim(client)
        limits.release(client)
        limits.forget_idle()
    assert len(limits) <= WINDOW_S / 0.01 + 1


def _admission(headroom: float = 0.85) -> Admission:
    # Admission reads only the batcher's measured cost: no model runs here.
    batcher = FrameBatcher(None, BatcherConfig(), concurrent.futures.ThreadPoolExecutor(1))  # type: ignore[arg-type]
    batcher.seconds_per_frame = 0.010  # 10 ms of the model thread per frame: one 30 fps session takes 0.3 of it
    return Admission(batcher, max_sessions=8, target_fps=30.0, headroom=headroom, measured=True, cores=64)


@pytest.mark.parametrize(("fps_in", "charged"), [
    (None, 30.0),  # not measured yet: the full target
    (0.0, FLOOR_FPS),  # silent: the floor, not nothing (its camera may start)
    (10.0, 10.0),  # a 10 fps camera: what it sends
    (29.0, 29.0),
    (60.0, 30.0),  # at most the target rate
])
def test_a_session_is_charged_its_measured_input_rate(fps_in: float | None, charged: float) -> None:
    assert _admission().charge(fps_in) == charged


@pytest.mark.parametrize(("case", "rates", "admitted"), [
    ("two unmeasured sessions count as 30 fps each: 0.9 of the model thread with a third", [None, None], False),
    ("two full 30 fps cameras", [30.0, 30.0], False),
    ("two silent sessions: 0.4", [0.0, 0.0], True),
    ("two 10 fps cameras: 0.5", [10.0, 10.0], True),
    ("four 10 fps cameras: 0.7", [10.0] * 4, True),
    ("five 10 fps cameras: 0.8", [10.0] * 5, True),
    ("six 10 fps cameras: 0.9", [10.0] * 6, False),
])
def test_admission_budgets_running_sessions_at_their_measured_rate(case: str, rates: list, admitted: bool) -> None:
    admission = _admission()
    if admitted:
        admission.check(rates)
    else:
        with pytest.raises(BusyError, match="server busy"):
            admission.check(rates)
    budget = admission.budget(rates)
    assert budget.charged_fps == sum(admission.charge(rate) for rate in rates), case
