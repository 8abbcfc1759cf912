"""Separate Redis databases for each process of a parallel run (pytest -n 2, pytest-xdist).

Loaded with `-p` from pyproject.toml, so it runs before Django reads its settings. Each xdist
process gets its own test database from pytest-django (test_<name>_gw0, _gw1, ...); here it
also gets its own Redis databases: the first process (gw0) keeps the numbers of
CELERY_BROKER_URL and CACHE_URL, process N moves them by N times the span they cover
(broker 4 and cache 5: gw1 uses 6 and 7), downwards when that would pass Redis's last
database (broker 15 and cache 14: gw1 uses 13 and 12). Without xdist nothing changes. Other
brokers (RabbitMQ, the filesystem) are left as they are: run their tests in one process.
"""

from __future__ import annotations

import os
import re

LAST_REDIS_DB = 15  # Redis's default `databases 16`
_REDIS = re.compile(r"^(?P<head>(?:redis|rediss|rediscache)://[^/]*)/(?P<db>\d+)(?P<tail>(?:\?.*)?)$")
NAMES = ("CELERY_BROKER_URL", "CACHE_URL")


def worker_number() -> int:
    """0 outside xdist and for its first process (gw0); N for gwN."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0


def redis_urls_for_worker(urls: dict[str, str], number: int) -> dict[str, str]:
    """`urls` (name -> URL) with each Redis URL's database moved for process `number`."""
    found = {name: match for name, url in urls.items() if (match := _REDIS.match(url))}
    if number == 0 or not found:
        return dict(urls)
    dbs = [int(match["db"]) for match in found.values()]
    shift = (max(dbs) - min(dbs) + 1) * number
    if max(dbs) + shift > LAST_REDIS_DB:
        shift = -shift
    if min(dbs) + shift < 0:
        raise RuntimeError(f"not enough Redis databases for parallel process {number}: {sorted(dbs)}")
    moved = dict(urls)
    for name, match in found.items():
        moved[name] = f"{match['head']}/{int(match['db']) + shift}{match['tail']}"
    return moved


def _apply() -> None:
    number = worker_number()
    given = {name: os.environ[name] for name in NAMES if os.environ.get(name)}
    os.environ.update(redis_urls_for_worker(given, number))


_apply()
