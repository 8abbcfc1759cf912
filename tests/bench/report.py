"""The benchmark's figures, the README's targets, and their presentation: a table on the
terminal, bench/results.json, an SVG bar chart (no plotting library) and the README table."""

from __future__ import annotations

import contextlib
import html
import json
import os
import platform
import re
import subprocess
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# The targets the README's "Performance" section states (keep the two in step).
# key: (comparison, value)
TARGETS: dict[str, tuple[str, float]] = {
    "api_add_rps": (">=", 300),
    "api_add_p95_ms": ("<=", 150),
    "api_status_rps": (">=", 500),
    "drain_orders_per_s": (">=", 120),
    "drain_simulator_adds": ("==", -1),  # -1: must equal the number of orders drained
    "sync_seconds": ("<=", 60),
    "orders_page_first_ms": ("<=", 100),
    "orders_page_deep_ms": ("<=", 100),
    "admin_list_first_ms": ("<=", 100),
    "admin_list_deep_ms": ("<=", 100),
    "dashboard_ms": ("<=", 100),
    "quality_services_page_ms": ("<=", 100),
    "quality_new_order_ms": ("<=", 100),
    "quality_api_services_ms": ("<=", 100),
    "wallet_consistent": ("==", 1),
    "ledger_audit_ok": ("==", 1),
    "webhooks_drain_ratio": (">=", 90),  # the drain with webhooks on within 10 % of without
    "webhooks_events": ("==", -1),
    "webhooks_all_arrived": ("==", 1),
    "webhooks_signatures_valid": ("==", 1),
    "webhooks_in_order": ("==", 1),
}
CHECKS = frozenset(
    {"wallet_consistent", "ledger_audit_ok", "webhooks_all_arrived", "webhooks_signatures_valid", "webhooks_in_order"}
)  # yes/no figures that must be yes


@dataclass
class Figure:
    key: str
    label: str
    value: float | None
    unit: str = ""
    target: str = ""
    ok: bool | None = None  # None: no target

    @property
    def shown(self) -> str:
        if self.value is None:
            return "not measured"
        if self.unit == "yes/no":
            return "yes" if self.value else "NO"
        if isinstance(self.value, float) and not self.value.is_integer():
            return f"{self.value:,.1f} {self.unit}".strip()
        return f"{int(self.value):,} {self.unit}".strip()

    @property
    def verdict(self) -> str:
        if self.ok is None:
            return ""
        return "pass" if self.ok else "MISS"


def judge(key: str, value: float | None, *, expected: float | None = None) -> tuple[str, bool | None]:
    """The target text and whether `value` meets it (None when there is no target)."""
    if key not in TARGETS:
        return "", None
    op, target = TARGETS[key]
    if op == "==" and target == -1:
        target = expected if expected is not None else float("nan")
    if key in CHECKS:
        return "yes", bool(value)
    text = {">=": "≥", "<=": "≤", "==": "="}[op] + f" {target:,.0f}"
    if value is None:
        return text, False
    ok = {">=": value >= target, "<=": value <= target, "==": value == target}[op]
    return text, ok


def figure(key: str, label: str, value: float | None, unit: str = "", *, expected: float | None = None) -> Figure:
    target, ok = judge(key, value, expected=expected)
    return Figure(key=key, label=label, value=value, unit=unit, target=target, ok=ok)


# --- Machine -------------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    postgres = ""
    with contextlib.suppress(OSError):
        postgres = subprocess.run(["psql", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    return {
        "cpu": cpu or platform.processor(),
        "cores": os.cpu_count(),
        "memory_gb": memory_gb,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "postgresql": postgres.replace("psql (PostgreSQL) ", ""),
    }


def machine_line(info: dict[str, Any]) -> str:
    return (
        f"{info['cores']} cores ({info['cpu']}), {info['memory_gb']} GB RAM, {info['os']}, "
        f"Python {info['python']}, PostgreSQL {info['postgresql'].split()[0] if info['postgresql'] else '?'}"
    )


# --- Output --------------------------------------------------------------------------------------
def table(figures: list[Figure]) -> str:
    rows = [("figure", "result", "target", "")] + [(f.label, f.shown, f.target, f.verdict) for f in figures]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(figures: list[Figure], *, when: str, info: dict[str, Any], duration_s: float, quick: bool) -> str:
    out = [
        f"Latest run: {when} on {machine_line(info)}; `make bench` took {duration_s / 60:.0f} min"
        + (" (**--quick**: shortened, not comparable)" if quick else "")
        + ".",
        "",
        "| figure | result | target | |",
        "| --- | --- | --- | --- |",
    ]
    out += [f"| {f.label} | {f.shown} | {f.target} | {f.verdict} |" for f in figures]
    return "\n".join(out)


def write_json(path: Path, *, figures: list[Figure], details: dict[str, Any], meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {**meta, "figures": [asdict(f) | {"verdict": f.verdict} for f in figures], "details": details}
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")


def write_svg(path: Path, figures: list[Figure], *, title: str) -> None:
    """One bar per figure with a target, as a share of the target (longer is better; the line
    at 100 % is the target); green meets it, red misses."""
    chosen = [f for f in figures if f.ok is not None and f.value is not None and f.key in TARGETS]
    chosen = [f for f in chosen if TARGETS[f.key][0] in (">=", "<=")]
    bar_h, gap, left, width, top = 22, 10, 330, 420, 50
    height = top + len(chosen) * (bar_h + gap) + 40
    scale = width / 2.0  # 200 % of the target fills the width
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 150}" height="{height}" '
        'font-family="sans-serif" font-size="13">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="10" y="24" font-size="15" font-weight="bold">{html.escape(title)}</text>',
    ]
    for n, f in enumerate(chosen):
        op, target = TARGETS[f.key]
        value = float(f.value or 0)
        share = value / target if op == ">=" else (target / value if value > 0 else 2.0)
        share = max(0.0, min(share, 2.0))
        y = top + n * (bar_h + gap)
        color = "#2e7d32" if f.ok else "#c62828"
        parts.append(f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{html.escape(f.label)}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{share * scale:.1f}" height="{bar_h}" fill="{color}"/>')
        parts.append(
            f'<text x="{left + share * scale + 6:.1f}" y="{y + 15}">{html.escape(f.shown)} '
            f"(target {html.escape(f.target)})</text>"
        )
    x100 = left + scale
    parts.append(
        f'<line x1="{x100}" y1="{top - 8}" x2="{x100}" y2="{height - 30}" stroke="#333" stroke-dasharray="4 3"/>'
    )
    parts.append(f'<text x="{x100}" y="{height - 14}" text-anchor="middle">target (100 %)</text>')
    parts.append(f'<text x="{left}" y="{height - 14}" text-anchor="middle">0</text>')
    parts.append("</svg>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts) + "\n")


README_START = "<!-- bench:results:start -->"
README_END = "<!-- bench:results:end -->"


def update_readme(readme: Path, block: str) -> bool:
    text = readme.read_text()
    pattern = re.compile(re.escape(README_START) + r".*?" + re.escape(README_END), re.S)
    if not pattern.search(text):
        return False
    readme.write_text(pattern.sub(lambda _m: f"{README_START}\n{block}\n{README_END}", text))
    return True


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
