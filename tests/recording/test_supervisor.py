"""The supervisor: one recorder per proxy, at a lower CPU priority than the workers."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import aiohttp

from recording.supervisor import RECORDER_NICENESS
from tests.conftest import ProxyProcess


async def _recorder_pid(proxy: ProxyProcess) -> int:
    async with aiohttp.ClientSession() as http:
        for _ in range(100):
            async with http.get(f"{proxy.url}/livez") as resp:
                recorder = ((await resp.json()).get("writer") or {}).get("recorder") or {}
            if recorder.get("pid"):
                return int(recorder["pid"])
            await asyncio.sleep(0.1)
    raise AssertionError("the recorder never published its status")


def test_the_recorder_yields_the_cpu_to_the_workers(proxy: ProxyProcess) -> None:
    pid = asyncio.run(_recorder_pid(proxy))
    assert b"recording" in Path(f"/proc/{pid}/cmdline").read_bytes()
    assert os.getpriority(os.PRIO_PROCESS, pid) == RECORDER_NICENESS
    # The proxy itself keeps the default priority.
    assert os.getpriority(os.PRIO_PROCESS, proxy.proc.pid) == 0
