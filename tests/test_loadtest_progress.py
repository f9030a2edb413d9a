"""The load tester's progress line: redrawn in place on a terminal, whole lines at most once a second in a log."""

from __future__ import annotations

import io

from loadtest.progress import ProgressLine


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    """Seconds that the test advances by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_log_gets_one_whole_line_a_second_and_the_last_state() -> None:
    log, clock = io.StringIO(), Clock()
    progress = ProgressLine("loadtest", stream=log, clock=clock)
    for tick in range(31):  # 15 s of updates every 0.5 s, as the runner sends them
        clock.now = tick * 0.5
        progress.show(f"{tick * 0.5:4.1f}/15 s")
    clock.now = 15.2
    progress.done()
    text = log.getvalue()
    assert "\r" not in text and "\033" not in text
    lines = text.splitlines()
    assert len(lines) == 16  # 0, 1, ..., 15 s: one a second
    assert lines[0] == "[loadtest]  0.0/15 s" and lines[1] == "[loadtest]  1.0/15 s"
    assert lines[-1] == "[loadtest] 15.0/15 s"


def test_a_held_back_last_state_is_printed_at_the_end() -> None:
    log, clock = io.StringIO(), Clock()
    progress = ProgressLine("soak", stream=log, clock=clock)
    progress.show("1/3 cycles")
    clock.now = 0.3
    progress.show("2/3 cycles")
    clock.now = 0.6
    progress.show("3/3 cycles")
    progress.done()
    assert log.getvalue().splitlines() == ["[soak] 1/3 cycles", "[soak] 3/3 cycles"]


def test_a_terminal_gets_the_line_redrawn_in_place() -> None:
    screen, clock = Terminal(), Clock()
    progress = ProgressLine("loadtest", stream=screen, clock=clock)
    for tick in range(4):
        clock.now = tick * 0.1
        progress.show(f"step {tick}")
    progress.done()
    text = screen.getvalue()
    assert text.count("\r\033[K[loadtest] step") == 4 and text.endswith("step 3\n")


def test_quiet_prints_nothing() -> None:
    log = io.StringIO()
    progress = ProgressLine("loadtest", quiet=True, stream=log)
    progress.show("anything")
    progress.done()
    assert log.getvalue() == ""
