"""Memory freed by closed sessions goes back to the system (server.memory): fragmented freed blocks, as many
threads' codecs leave them, are returned by one trim; trims are rate-limited and need a closed session."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from loadtest.local_server import REPO_ROOT

# In a process of its own: RSS is process-wide and the test process holds models and frames.
SCENARIO = textwrap.dedent("""
    import asyncio, json, threading
    from pathlib import Path
    from server.memory import FreedMemoryReleaser

    def rss_mb():
        status = Path("/proc/self/status").read_text().splitlines()
        return int(next(line for line in status if line.startswith("VmRSS")).split()[1]) / 1024

    pinned = []
    def churn():  # 80 MB of 2 KB blocks, one in 200 kept alive: the freed rest cannot shrink the heap's top
        blocks = [bytes(2000) for _ in range(40_000)]
        pinned.extend(blocks[::200])
        blocks.clear()

    async def main():
        releaser = FreedMemoryReleaser(min_interval_s=60)
        releaser.tick()  # nothing closed yet: no trim
        idle = releaser.trims_started
        threads = [threading.Thread(target=churn) for _ in range(4)]
        for thread in threads: thread.start()
        for thread in threads: thread.join()
        before = rss_mb()
        releaser.session_closed()
        releaser.tick()
        await releaser.wait()
        after = rss_mb()
        releaser.session_closed()
        releaser.tick()  # within min_interval_s of the last trim: none
        print(json.dumps({"available": releaser.available, "idle": idle, "trims": releaser.trims_started,
                          "before": before, "after": after}))
    asyncio.run(main())
""")


def test_a_closed_session_lets_housekeeping_return_freed_memory() -> None:
    completed = subprocess.run([sys.executable, "-c", SCENARIO], cwd=REPO_ROOT, capture_output=True, text=True,
                               timeout=120, check=True)
    result = json.loads(completed.stdout)
    assert result["available"]  # glibc on Debian
    assert (result["idle"], result["trims"]) == (0, 1)
    assert result["before"] > 200
    assert result["after"] < result["before"] / 2, result
