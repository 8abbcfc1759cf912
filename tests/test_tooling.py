"""The pre-commit hooks are CI's quick checks, command for command."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CI_ONLY = {"pip-audit", "tests"}  # they need the network or minutes: CI runs them, commits do not


def _ci_steps() -> dict[str, str]:
    text = (ROOT / ".ci" / "run").read_text()
    return {
        m["name"]: m["command"].strip() for m in re.finditer(r'^step "(?P<name>[^"]+)" (?P<command>.+)$', text, re.M)
    }


def _hooks() -> list[dict[str, object]]:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    return [hook for repo in config["repos"] for hook in repo["hooks"]]


def test_each_quick_ci_step_is_a_pre_commit_hook_running_the_same_command():
    steps = {name: command for name, command in _ci_steps().items() if name not in CI_ONLY}
    assert steps, "no steps found in .ci/run"
    assert {hook["name"]: hook["entry"] for hook in _hooks()} == steps


def test_the_hooks_use_the_projects_own_tools_on_the_whole_tree():
    for hook in _hooks():
        assert hook["language"] == "system", hook["id"]
        assert hook["pass_filenames"] is False, hook["id"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze (systemd)")
def test_the_systemd_units_verify():
    out = subprocess.run([str(ROOT / "deploy" / "verify")], capture_output=True, text=True, check=False, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_worker_units_consume_the_queues_the_deploy_settings_route_to():
    units = ROOT / "deploy" / "systemd"
    submit = (units / "smmpanel-worker-submit@.service").read_text()
    sync = (units / "smmpanel-worker-sync@.service").read_text()
    assert "--queues submit " in submit
    assert "--queues sync,celery " in sync  # beat's own tasks go to the default queue
    webhooks = (units / "smmpanel-worker-webhooks@.service").read_text()
    assert "--queues webhooks " in webhooks
    assert "Nice=10" in webhooks  # order processing goes first on a shared host
    guide = (ROOT / "deploy" / "README.md").read_text()
    assert (
        "`ORDERS_SUBMIT_QUEUE`, `ORDERS_SYNC_QUEUE`, `WEBHOOKS_QUEUE` | empty (one worker takes everything) "
        "| `submit`, `sync` and `webhooks`" in guide
    )
    beat = [p.name for p in units.iterdir() if "beat" in p.read_text().split("ExecStart=", 1)[-1].split()[:4]]
    assert beat == ["smmpanel-beat.service"]
