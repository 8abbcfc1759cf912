"""wrk as the load generator of the API benchmarks: Lua scripts for API v2 `add` and `status`
and a runner that returns requests per second, latency percentiles and error counts.

Every reply is read: a non-200 status or a body with `"error"` counts as an error, so a
fast run of refused requests cannot pass for throughput.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

LUA_COMMON = """
local keys = {%(keys)s}
local services = {%(services)s}
local counter = 0
local thread_id = 0
local threads = {}
app_errors = 0
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  thread_id = id
end
function response(status, headers, body)
  if status ~= 200 or string.find(body, '"error"', 1, true) then
    app_errors = app_errors + 1
  end
end
function done(summary, latency, requests)
  local errors = 0
  for _, thread in ipairs(threads) do
    errors = errors + thread:get("app_errors")
  end
  io.write(string.format("RESULT %%d %%d %%d %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), summary.errors.status,
    summary.errors.timeout, errors))
end
"""

LUA_ADD = (
    LUA_COMMON
    + """
function request()
  counter = counter + 1
  local key = keys[(thread_id * 7919 + counter) %% #keys + 1]
  local service = services[counter %% #services + 1]
  local body = "key=" .. key .. "&action=add&service=" .. service ..
    "&link=https%%3A%%2F%%2Finstagram.com%%2Fp%%2Fb%(run)s" .. thread_id .. "x" .. counter .. "&quantity=%(quantity)s"
  return wrk.format("POST", "/api/v2", {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end
"""
)

LUA_STATUS = (
    LUA_COMMON
    + """
local ids = {%(ids)s}
function request()
  counter = counter + 1
  local i = (thread_id * 7919 + counter) %% #keys + 1
  local body = "key=" .. keys[i] .. "&action=status&orders=" .. ids[i]
  return wrk.format("POST", "/api/v2", {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end
"""
)


def _lua_list(items: Sequence[object], *, quoted: bool) -> str:
    return ",".join(f'"{i}"' if quoted else str(i) for i in items)


def add_script(*, keys: Sequence[str], services: Sequence[int], quantity: int = 100, run: str = "") -> str:
    """Each request: a key in turn, a service in turn, a link never used before."""
    return LUA_ADD % {
        "keys": _lua_list(keys, quoted=True),
        "services": _lua_list(services, quoted=False),
        "quantity": quantity,
        "run": re.sub(r"[^a-z0-9]", "", run.lower()),
    }


def status_script(*, keys: Sequence[str], id_lists: Sequence[str]) -> str:
    """Each request: a key in turn with its own comma-separated ids (up to 100)."""
    return LUA_STATUS % {
        "keys": _lua_list(keys, quoted=True),
        "services": "",
        "ids": _lua_list(id_lists, quoted=True),
    }


def available() -> bool:
    return shutil.which("wrk") is not None


def run(script: str, *, url: str, duration: int, connections: int, threads: int = 2) -> dict[str, float]:
    """Run wrk with this script; the figures its `done` prints."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        out = subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{connections}",
                f"-d{duration}s",
                "--timeout",
                "10s",
                "-s",
                f.name,
                url,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=duration + 60,
        )
    finally:
        Path(f.name).unlink(missing_ok=True)
    match = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)", out.stdout)
    if not match:
        raise RuntimeError(f"wrk printed no result:\n{out.stdout}\n{out.stderr}")
    reqs, dur_us, p50, p95, p99, bad_status, timeouts, app_errors = map(int, match.groups())
    return {
        "requests": reqs,
        "seconds": round(dur_us / 1e6, 2),
        "rps": round(reqs / (dur_us / 1e6), 1),
        "p50_ms": round(p50 / 1000, 1),
        "p95_ms": round(p95 / 1000, 1),
        "p99_ms": round(p99 / 1000, 1),
        "non_2xx": bad_status,
        "timeouts": timeouts,
        "errors": app_errors,
    }
