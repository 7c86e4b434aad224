"""Starting, watching and stopping the benchmark's child processes.

CPU time and peak memory come from ``/proc``: ``utime + stime`` of a process and all its
descendants (granian serves from a worker child), and ``VmHWM``, the peak resident set.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
STOP_TIMEOUT_S = 15.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses; the fields follow the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def descendants(pid: int) -> list[int]:
    """``pid`` and every live process below it."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is not None:
            parents.setdefault(int(fields[1]), []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(parents.get(current, []))
    return tree


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` and its descendants, in seconds."""
    total = 0
    for member in descendants(pid):
        fields = _stat_fields(member)
        if fields is not None:
            # Fields 14 and 15 of /proc/PID/stat, counted from 1 with pid and comm.
            total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def _status_kb(pid: int, name: str) -> int:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        if line.startswith(name + ":"):
            return int(line.split()[1])
    return 0


def peak_rss_mb(pid: int) -> float:
    """The largest ``VmHWM`` among ``pid`` and its descendants, in MiB."""
    return max(_status_kb(member, "VmHWM") for member in descendants(pid)) / 1024


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process {process.args!r} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def http_status(port: int, path: str) -> int:
    """The status of ``GET path`` on 127.0.0.1:``port``, or 0 when it cannot connect."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except OSError:
        return 0
    finally:
        conn.close()


def _start_time(pid: int) -> str | None:
    fields = _stat_fields(pid)
    return fields[19] if fields is not None else None


def _kill_leftovers(family: list[tuple[int, str | None]]) -> None:
    """SIGKILL children that outlived their parent (same pid and start time only)."""
    time.sleep(0.2)
    for pid, started in family:
        if started is not None and _start_time(pid) == started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@dataclass
class Child:
    """A child process whose output goes to a log file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    _log: BinaryIO | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        """The process id."""
        assert self.process is not None
        return self.process.pid

    def start(self) -> Child:
        """Start the process."""
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.argv, env=self.env, stdout=self._log, stderr=subprocess.STDOUT
        )
        return self

    def wait_ready(self, port: int, path: str | None, timeout: float = 30.0) -> None:
        """Wait for the port, then (when ``path`` is given) for ``GET path`` to answer 200."""
        assert self.process is not None
        wait_for_port(port, self.process, timeout)
        if path is None:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if http_status(port, path) == 200:
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready; see {self.log_path}")

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after a grace period; returns the exit code."""
        if self.process is None:
            return None
        alive = self.process.poll() is None
        family = [(p, _start_time(p)) for p in descendants(self.process.pid)[1:]] if alive else []
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(STOP_TIMEOUT_S)
            return self.process.returncode
        finally:
            _kill_leftovers(family)
            if self._log is not None:
                self._log.close()
                self._log = None
