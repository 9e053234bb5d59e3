"""Recorded-style Claude Code sessions replayed through the dashboard tests' proxy,
for the Conversations list and thread tests.

Each session of tests/fixtures/conversations is sent request by request as the
client sent it; the shared fake upstream answers each with its recorded reply
(streamed as the API streams it, `sse_of`), registered as a script. The shared
proxy's log outlives a module, so every replay gets its own session ids and
project paths (a tag per run); a session replayed once is reused by the next
module. `hostile_session` is a small session whose prompt, tool input, tool
result and reply carry script-injection payloads.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import aiohttp

from tests.conftest import wait_recorded
from tests.conversations.test_session_e2e import sse_of
from tests.dashboard.conftest import API_KEY, DashboardEnv
from tests.fixtures.conversations import exchanges
from tests.fixtures.conversations.claude_code import (
    MAIN_SESSION,
    OPUS,
    SESSION_21,
    TOOLS,
    headers_21,
    reply,
    system,
    text,
    tool_result,
    tool_use,
    usage,
    user_id,
)

TAG = uuid.uuid4().hex[:8]
# (the fixture's value, what this run sends instead): ids and paths unique per run.
MAIN_PROJECT = "/home/dev/acme-billing"
PROJECT_21 = "/home/dev/orbit-api"
XSS_PROJECT = f"/home/dev/xss-lab-{TAG}"
# Inert when escaped; each sets window.__xss (or opens a dialog) if it ever runs.
PAYLOADS = (
    "<script>window.__xss='script'</script> "
    "<img src=x onerror=\"window.__xss='img'\"> "
    "[click me](javascript:window.__xss='md') "
    "<a href=\"javascript:window.__xss='a'\">anchor</a>"
)


@dataclass(frozen=True)
class Replayed:
    name: str
    conversation_id: str
    project: str | None
    request_ids: list[str]
    entries: list[dict[str, Any]]


_DONE: dict[tuple[str, str], Replayed] = {}


def _renamed(name: str) -> tuple[list[dict[str, Any]], str, str | None]:
    """The session's exchanges with this run's ids and paths."""
    raw = json.dumps(exchanges(name))
    swaps = {
        MAIN_SESSION: str(uuid.uuid4()),
        SESSION_21: str(uuid.uuid4()),
        MAIN_PROJECT: f"{MAIN_PROJECT}-{TAG}",
        PROJECT_21: f"{PROJECT_21}-{TAG}",
    }
    for old, new in swaps.items():
        raw = raw.replace(old, new)
    session = swaps[SESSION_21] if name == "claude_code_21" else swaps[MAIN_SESSION]
    project = {"main_session": swaps[MAIN_PROJECT], "claude_code_21": swaps[PROJECT_21]}
    return json.loads(raw), session, project.get(name)


def _script(env: DashboardEnv, key: str, entry: dict[str, Any]) -> str:
    upstream = env.upstream
    if entry["status"] >= 400:
        error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        body = json.dumps(error).encode()
        return upstream.script(
            key, entry["status"], {"content-type": "application/json"}, body, sse=False
        )
    if entry["reply"] is None:
        body = json.dumps({"input_tokens": 42}).encode()
        return upstream.script(key, 200, {"content-type": "application/json"}, body, sse=False)
    if entry["body"].get("stream"):
        return upstream.script(key, 200, {}, sse_of(entry["reply"]), sse=True)
    body = json.dumps(entry["reply"]).encode()
    return upstream.script(key, 200, {"content-type": "application/json"}, body, sse=False)


def send_exchanges(env: DashboardEnv, entries: list[dict[str, Any]], key: str) -> list[str]:
    """Sends each exchange through the proxy (its scripted reply upstream); returns
    the proxy's request ids once the recorder has stored them all."""
    fakes = [_script(env, f"{key}-{i}", entry) for i, entry in enumerate(entries)]

    async def send() -> list[str]:
        ids = []
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{env.url}/livez") as resp:
                before = ((await resp.json()).get("writer") or {}).get("written") or 0
            for entry, fake in zip(entries, fakes, strict=True):
                headers = [*map(tuple, entry["headers"]), ("x-api-key", API_KEY), ("x-fake", fake)]
                url = env.url + entry["path"]
                async with http.post(url, data=json.dumps(entry["body"]), headers=headers) as resp:
                    await resp.read()
                    assert resp.status == entry["status"], (resp.status, entry["status"])
                    ids.append(resp.headers["x-proxy-request-id"])
            await wait_recorded(http, env.proxy, before + len(entries))
        return ids

    # Its own thread and loop: Playwright marks the test's thread as running one.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, send()).result()


def replay(env: DashboardEnv, name: str) -> Replayed:
    """A fixture session through the proxy, once per run and proxy."""
    known = _DONE.get((env.url, name))
    if known is not None:
        return known
    entries, session, project = _renamed(name)
    ids = send_exchanges(env, entries, f"{name}-{TAG}-{env.proxy.port}")
    done = Replayed(name, session, project, ids, entries)
    _DONE[(env.url, name)] = done
    return done


def hostile_session() -> tuple[list[dict[str, Any]], str]:
    """Two requests: a prompt full of payloads, a reply whose text links to
    `javascript:` and whose Bash call carries them, then the call's result."""
    session = str(uuid.uuid4())
    hdrs = headers_21(session)
    sys_main = system("You are an interactive CLI tool.", XSS_PROJECT, model=OPUS)

    def body(messages: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "model": OPUS,
            "messages": messages,
            "system": sys_main,
            "tools": TOOLS,
            "metadata": {"user_id": user_id(session)},
            "max_tokens": 4096,
            "stream": True,
        }

    first = [{"role": "user", "content": [text(f"xssprompt {PAYLOADS}")]}]
    answer = reply(
        [
            text(f"xssreply [a link](javascript:window.__xss='reply') **bold** {PAYLOADS}"),
            tool_use(
                "toolu_xss_0001",
                "Bash",
                command=f"echo xssinput {PAYLOADS}",
                description="<img src=x onerror=\"window.__xss='title'\">",
            ),
        ],
        "tool_use",
        usage(10, 0, 0, 40),
        OPUS,
    )
    second = [
        *first,
        {"role": "assistant", "content": answer["content"]},
        {"role": "user", "content": [tool_result("toolu_xss_0001", f"xssresult {PAYLOADS}")]},
    ]
    done = reply([text("Done.")], "end_turn", usage(12, 0, 0, 5), OPUS)
    path = "/v1/messages?beta=true"
    entries = [
        {"path": path, "headers": hdrs, "body": body(first), "status": 200, "reply": answer},
        {"path": path, "headers": hdrs, "body": body(second), "status": 200, "reply": done},
    ]
    return entries, session


def long_session(requests: int) -> tuple[list[dict[str, Any]], str]:
    """One history growing by a prompt and a reply per request."""
    session = str(uuid.uuid4())
    hdrs = headers_21(session)
    sys_main = system("You are an interactive CLI tool.", f"/home/dev/long-{TAG}", model=OPUS)
    history: list[dict[str, Any]] = []
    entries = []
    for n in range(1, requests + 1):
        history.append({"role": "user", "content": [text(f"long step #{n}")]})
        answer = reply([text(f"Answer to step {n}.")], "end_turn", usage(5, 0, 0, 7), OPUS)
        body = {
            "model": OPUS,
            "messages": list(history),
            "system": sys_main,
            "tools": TOOLS,
            "metadata": {"user_id": user_id(session)},
            "max_tokens": 4096,
            "stream": True,
        }
        entries.append(
            {
                "path": "/v1/messages?beta=true",
                "headers": hdrs,
                "body": body,
                "status": 200,
                "reply": answer,
            }
        )
        history.append({"role": "assistant", "content": answer["content"]})
    return entries, session


def replay_hostile(env: DashboardEnv) -> Replayed:
    known = _DONE.get((env.url, "hostile"))
    if known is not None:
        return known
    entries, session = hostile_session()
    ids = send_exchanges(env, entries, f"hostile-{TAG}-{env.proxy.port}")
    done = Replayed("hostile", session, XSS_PROJECT, ids, entries)
    _DONE[(env.url, "hostile")] = done
    return done
