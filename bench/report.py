"""Turning scenario measurements into the comparison table and the JSON results."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

Row = dict[str, Any]

COLUMNS = (
    ("target", "target", "{}"),
    ("mode", "mode", "{}"),
    ("c", "concurrency", "{}"),
    ("req/s", "rps", "{:.0f}"),
    ("p50 ms", "p50_ms", "{:.3f}"),
    ("p99 ms", "p99_ms", "{:.3f}"),
    ("+p50 ms", "added_p50_ms", "{:+.3f}"),
    ("+p99 ms", "added_p99_ms", "{:+.3f}"),
    ("rps ×", "rps_ratio", "{:.2f}"),
    ("p50 ×", "p50_ratio", "{:.2f}"),
    ("CPU ms/req", "server_cpu_ms_per_req", "{:.3f}"),
    ("client CPU", "client_cpu_ms_per_req", "{:.3f}"),
    ("peak RSS MB", "peak_rss_mb", "{:.1f}"),
    ("errors", "errors", "{}"),
)


def compare_with_direct(rows: list[Row]) -> None:
    """Add added latency and gateway/direct ratios to every gateway row, in place."""
    direct = {(r["mode"], r["concurrency"]): r for r in rows if r["target"] == "direct"}
    for row in rows:
        base = direct.get((row["mode"], row["concurrency"]))
        if row["target"] == "direct" or base is None:
            continue
        row["added_p50_ms"] = row["p50_ms"] - base["p50_ms"]
        row["added_p99_ms"] = row["p99_ms"] - base["p99_ms"]
        row["rps_ratio"] = row["rps"] / base["rps"] if base["rps"] else None
        row["p50_ratio"] = row["p50_ms"] / base["p50_ms"] if base["p50_ms"] else None
        row["p99_ratio"] = row["p99_ms"] / base["p99_ms"] if base["p99_ms"] else None


def _cell(row: Row, key: str, fmt: str) -> str:
    value = row.get(key)
    return "-" if value is None else fmt.format(value)


def markdown_table(rows: list[Row]) -> str:
    """The rows as a Markdown table."""
    lines = [
        "| " + " | ".join(title for title, _, _ in COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    for row in rows:
        cells = (_cell(row, key, fmt) for _, key, fmt in COLUMNS)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_json(path: Path, meta: dict[str, Any], rows: list[Row]) -> None:
    """The run's metadata and every row, as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"meta": meta, "scenarios": rows}, indent=2) + "\n")


def machine_info() -> dict[str, Any]:
    """CPU count and model, and the load average when the run started."""
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def source_info(src_dir: Path | None) -> dict[str, Any]:
    """Which VaultGate code ran: the commit, whether the tree had changes, a content hash."""
    root = Path(__file__).resolve().parent.parent
    src = src_dir or root / "src"
    digest = hashlib.sha256()
    for path in sorted(src.rglob("*.py")):
        digest.update(str(path.relative_to(src)).encode() + b"\0" + path.read_bytes())
    info: dict[str, Any] = {"src": str(src), "src_sha256": digest.hexdigest()[:16]}
    if src_dir is None:
        git = ["git", "-C", str(root)]
        head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True)
        status = subprocess.run(
            [*git, "status", "--porcelain", "src"], capture_output=True, text=True
        )
        info["commit"] = head.stdout.strip()
        info["src_uncommitted_changes"] = bool(status.stdout.strip())
    return info
