"""`make chaos --hosts 2`: the pure parts (addresses, commands, URLs, the exactly-once walk)."""

from __future__ import annotations

import pytest

from chaos.checks import sending_attempts
from chaos.hosts import PG_OPTIONS, Host, cut_commands, heal_commands, host_env, hosts, relay_argv, rewrite_url
from chaos.run import parse_args


def test_each_host_has_its_own_namespace_link_and_subnet():
    one, two = hosts(2)
    assert (one.netns, one.link, one.address, one.gateway) == ("chaos-h1", "chaos-h1", "10.77.1.2", "10.77.1.1")
    assert (two.netns, two.address, two.gateway) == ("chaos-h2", "10.77.2.2", "10.77.2.1")
    assert len(two.link) <= 15  # an interface name's limit
    assert two.exec_argv(["celery", "worker"]) == ["ip", "netns", "exec", "chaos-h2", "celery", "worker"]


def test_the_services_are_reached_through_the_hosts_gateway_only():
    env = {
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/chaos_x",
        "CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:41234//",
        "CACHE_URL": "rediscache://127.0.0.1:39999/1",
        "OTHER": "kept",
    }
    out = host_env(env, Host(2), pg_port=5432)
    assert out["DATABASE_URL"] == f"postgres://postgres@10.77.2.1:5432/chaos_x?{PG_OPTIONS}"
    assert "tcp_user_timeout=" in out["DATABASE_URL"] and "keepalives=1" in out["DATABASE_URL"]
    assert out["CELERY_BROKER_URL"] == "amqp://guest:guest@10.77.2.1:41234//"
    assert out["CACHE_URL"] == "rediscache://10.77.2.1:39999/1"
    assert (out["OTHER"], out["CHAOS_HOST"]) == ("kept", "host2")
    assert not any("127.0.0.1" in v for k, v in out.items() if k in ("DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL"))


def test_rewrite_url_keeps_existing_query_options():
    url = rewrite_url("postgres://u:p@localhost:5433/db?sslmode=disable", "10.77.1.1")
    assert url == "postgres://u:p@10.77.1.1:5433/db?sslmode=disable"
    env = {"DATABASE_URL": url, "CELERY_BROKER_URL": "redis://127.0.0.1:1/0", "CACHE_URL": "redis://127.0.0.1:1/1"}
    assert host_env(env, Host(1), pg_port=5433)["DATABASE_URL"].endswith("?sslmode=disable&" + PG_OPTIONS)


def test_the_relay_listens_on_the_gateway_and_gives_up_on_a_silent_host():
    listen, target = relay_argv(Host(1), listen_port=5432, target=("127.0.0.1", 5432))[1:]
    assert listen.startswith("TCP4-LISTEN:5432,bind=10.77.1.1,") and ",fork," in listen
    assert "keepalive" in listen and "setsockopt-int=6:18:10000" in listen  # TCP_USER_TIMEOUT, 10 s
    assert target.startswith("TCP4:127.0.0.1:5432")


def test_a_cut_blinds_both_ends_of_the_link_and_healing_undoes_exactly_that():
    host = Host(2)
    cut, heal = cut_commands(host), heal_commands(host)
    assert [c[:3] for c in cut] == [["ip", "neigh", "replace"], ["ip", "-n", "chaos-h2"]]
    assert cut[0][3] == "10.77.2.2" and cut[0][-1] == "chaos-h2"  # the machine's end: the host unreachable
    assert cut[1][5] == "10.77.2.1" and cut[1][-1] == "eth0"  # the host's end: its gateway unreachable
    for c, h in zip(cut, heal, strict=True):
        assert h[h.index("neigh") + 1] == "del"
        assert h[h.index("neigh") + 2] == c[c.index("neigh") + 2]  # the same neighbour entry
        assert h[-2:] == c[-2:]  # on the same interface


def test_sending_attempts_each_end_once():
    history = [
        ("", "queued", "placed"),
        ("queued", "sending", "claimed"),
        ("sending", "unknown", "gave up after 40 s"),
        ("unknown", "sent", "late answer"),
    ]
    assert sending_attempts(history) == (["unknown: gave up after 40 s"], [])
    retried = [("queued", "sending", "a"), ("sending", "queued", "refused"), ("queued", "sending", "b")]
    assert sending_attempts([*retried, ("sending", "sent", "ok")]) == (["queued: refused", "sent: ok"], [])


def test_sending_attempts_flags_a_second_settlement_and_a_claim_never_settled():
    twice = [("queued", "sending", "claimed"), ("sending", "unknown", "sweep"), ("sending", "sent", "worker")]
    ends, problems = sending_attempts(twice)
    assert ends == ["unknown: sweep"]
    assert problems == ["left sending a second time: sending → sent (worker)"]
    assert sending_attempts([("queued", "sending", "claimed")])[1] == ["still sending"]


def test_hosts_option():
    assert (parse_args([]).hosts, parse_args([]).minutes) == (1, 6.0)
    assert (parse_args(["--hosts", "2"]).hosts, parse_args(["--hosts", "2"]).minutes) == (2, 9.0)
    assert parse_args(["--hosts", "2", "--minutes", "7"]).minutes == 7.0
    with pytest.raises(SystemExit):
        parse_args(["--hosts", "3"])
