import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_env_example_lists_every_setting_read_from_the_environment():
    read = set(re.findall(r'env(?:\.[a-z_]+)?\(\s*"([A-Z_]+)"', (ROOT / "smmpanel/settings.py").read_text()))
    read |= set(re.findall(r'os\.environ\.get\("([A-Z_]+)"', (ROOT / "gunicorn.conf.py").read_text()))
    listed = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
    assert read - listed == set()


def _start(**env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='smmpanel.settings'; django.setup()",
        ],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_production_without_a_secret_key_fails_at_start_up():
    result = _start(DJANGO_DEBUG="false")
    assert result.returncode != 0 and "DJANGO_SECRET_KEY" in result.stderr


def test_bad_values_fail_at_start_up_with_a_clear_message():
    result = _start(DJANGO_DEBUG="maybe-not")
    assert result.returncode != 0 and "DJANGO_DEBUG must be true or false" in result.stderr
    result = _start(PROVIDER_READ_TIMEOUT="0")
    assert result.returncode != 0 and "PROVIDER_READ_TIMEOUT must be positive" in result.stderr
    result = _start(PANEL_BASE_URL="panel.example")
    assert result.returncode != 0 and "PANEL_BASE_URL must be an http(s) address" in result.stderr


def test_production_settings_start_with_a_secret_key():
    assert _start(DJANGO_DEBUG="false", DJANGO_SECRET_KEY="x" * 60).returncode == 0


def test_a_redis_cache_forgives_an_unreachable_server():
    # A Redis restart must not fail logins and API calls (smmpanel/cache.py).
    program = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='smmpanel.settings'; django.setup(); "
        "from django.core.cache import caches; cache = caches['default']; cache.set('k', 1); "
        "print(type(cache).__name__, cache.get('k', 'gone'), cache.add('k', 2), cache.has_key('k'))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "CACHE_URL"))}
    result = subprocess.run(
        [sys.executable, "-c", program],
        env={**clean, "CACHE_URL": "rediscache://127.0.0.1:1/1"},  # nothing listens on port 1
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ForgivingRedisCache", "gone", "True", "False"]


def _redis_location() -> str:
    location = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
    if not location.startswith("redis://"):
        pytest.skip("the broker is not Redis")
    return location


@pytest.fixture
def redis_cache():
    from kernel.cache import ForgivingRedisCache

    return ForgivingRedisCache(_redis_location(), {})


@pytest.mark.broker
def test_the_redis_cache_builds_its_client_once_and_shares_it(redis_cache):
    # Django's Redis cache makes a new redis.Redis for every operation (about 170 callbacks
    # registered each time); ours keeps one per connection pool.
    from django.core.cache.backends.redis import RedisCache

    cache = redis_cache
    cache.set("reuse-check", 41)
    assert cache.incr("reuse-check") == 42
    assert cache._cache.get_client(write=True) is cache._cache.get_client(write=True)
    assert cache._cache.get_client() is cache._cache.get_client()
    plain = RedisCache(_redis_location(), {})
    assert plain._cache.get_client() is not plain._cache.get_client()  # what the subclass avoids
    cache.delete("reuse-check")


@pytest.mark.broker
def test_the_redis_cache_increments_atomically_and_keeps_the_expiry(redis_cache):
    # django-ratelimit counts with add() then incr(): one round trip, no counter without expiry.
    cache = redis_cache
    cache.delete("counter")
    with pytest.raises(ValueError):
        cache.incr("counter")
    assert cache.get("counter") is None  # a missing counter is not created
    assert cache.add("counter", 0, 60)
    client = cache._cache.get_client(write=True)
    sent: list[tuple] = []
    original = client.execute_command

    def counting(*args, **kwargs):
        sent.append(args)
        return original(*args, **kwargs)

    client.execute_command = counting
    try:
        assert cache.incr("counter") == 1
        assert cache.incr("counter", 5) == 6
    finally:
        del client.execute_command
    assert len(sent) == 2  # one command per increment
    assert 0 < client.ttl(cache.make_key("counter")) <= 60
    cache.delete("counter")


def test_trusted_proxy_count_comes_from_the_environment_and_reaches_allauth():
    program = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='smmpanel.settings'; django.setup(); "
        "from allauth import app_settings; print(app_settings.TRUSTED_PROXY_COUNT)"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    result = subprocess.run(
        [sys.executable, "-c", program],
        env={**clean, "TRUSTED_PROXY_COUNT": "2"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout.strip() == "2", result.stderr
    assert _start(TRUSTED_PROXY_COUNT="-1").returncode != 0
    old = _start(API_TRUST_X_FORWARDED_FOR="true")
    assert old.returncode != 0 and "TRUSTED_PROXY_COUNT" in old.stderr


def test_deploy_check_warns_when_panel_base_url_is_not_the_public_https_address():
    def deploy_check(**env: str) -> subprocess.CompletedProcess[str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PANEL_BASE_URL"))}
        return subprocess.run(
            [sys.executable, "manage.py", "check", "--deploy"],
            env={**clean, "DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": "x" * 60, **env},
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )

    default = deploy_check()
    assert "smmpanel.W001" in default.stderr + default.stdout
    fine = deploy_check(PANEL_BASE_URL="https://panel.example")
    assert "smmpanel.W001" not in fine.stderr + fine.stdout


def test_a_rabbitmq_broker_gets_durable_persistent_queues_and_publisher_confirms():
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='smmpanel.settings'; django.setup();"
        "from smmpanel.celery import app; c = app.conf;"
        "import json; print(json.dumps([c.broker_transport_options, c.task_default_queue_type,"
        " c.task_default_delivery_mode, c.worker_prefetch_multiplier, c.broker_heartbeat]))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CELERY_"))}
    env["CELERY_BROKER_URL"] = "amqp://guest:guest@127.0.0.1:5672//"
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    # Socket timeouts end a wait for a broker reply that never comes (a worker stuck in it
    # sends no heartbeats and takes no tasks).
    options = {"confirm_publish": True, "read_timeout": 30, "write_timeout": 30}
    assert json.loads(out.stdout) == [options, "classic", "persistent", 1, 60]
    # The submit task is acknowledged when taken, never redelivered to a second worker;
    # a sync chunk (idempotent) only when done.
    from orders.tasks import order_submit_task, order_sync_chunk_task

    assert order_submit_task.acks_late is False
    assert order_sync_chunk_task.acks_late is True


@pytest.mark.parametrize("value, threshold", [(None, 0), ("false", None), ("true", 0)])
def test_prepared_statements_follow_the_environment(value, threshold):
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='smmpanel.settings'; django.setup();"
        "from django.conf import settings; print(repr(settings.DATABASES['default']['OPTIONS']['prepare_threshold']))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    env["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/test"
    if value is not None:
        env["DATABASE_PREPARED_STATEMENTS"] = value
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == repr(threshold)


SQLITE_FLOW = """
import json, os
import django
os.environ['DJANGO_SETTINGS_MODULE'] = 'smmpanel.settings'
django.setup()
from decimal import Decimal
from django.core.management import call_command
from django.test import Client
call_command('migrate', verbosity=0)
from accounts.services import api_key_issue
from tests.factories import RouteFactory, UserFactory
from tests.orders.factories import fund
route = RouteFactory()
user = UserFactory(username='laptop')
fund(user, '10')
raw = api_key_issue(user=user)
client = Client()
placed = client.post('/api/v2', {'key': raw, 'action': 'add', 'service': route.service_id,
                                 'link': 'https://instagram.com/p/laptop', 'quantity': '1000'}).json()
status = client.post('/api/v2', {'key': raw, 'action': 'status', 'order': placed.get('order', 0)}).json()
balance = client.post('/api/v2', {'key': raw, 'action': 'balance'}).json()
print(json.dumps([placed, status, balance]))
"""


def test_make_runs_sqlite_database_takes_and_reports_an_order(tmp_path):
    # The suite runs on PostgreSQL; `make run` on a laptop runs on SQLite, where the API's
    # written-out lookups and the placing take the ORM's path and SQLite's own converters.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "CELERY_", "CACHE_"))}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'panel.sqlite3'}",
        CELERY_BROKER_URL="memory://",
        CACHE_URL="locmemcache://",
        DJANGO_ALLOWED_HOSTS="testserver",
    )
    out = subprocess.run(
        [sys.executable, "-c", SQLITE_FLOW], env=env, cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    placed, status, balance = json.loads(out.stdout.strip().splitlines()[-1])
    assert isinstance(placed.get("order"), int), placed
    assert (status["status"], status["charge"], status["remains"]) == ("Pending", "1.30000", "1000")
    assert balance["balance"] == "8.70000"
