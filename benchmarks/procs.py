"""Server processes under test: spawn, wait for readiness, read /proc, stop gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (peak RSS) in bytes and the thread count of a live process."""
    numbers: dict[str, int] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                numbers[name] = int(value.split()[0]) * 1024
            elif name == "Threads":
                numbers[name] = int(value)
    return numbers


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rpartition(")")[2].split()
    # After the command name: state is field 3, utime 14 and stime 15 (1-based, man 5 proc).
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_cpu() -> tuple[float, float]:
    """Seconds of CPU the whole machine spent busy and in steal since boot (all cores)."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice; guest is inside user.
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS, steal / CLOCK_TICKS


def pids_named(name: str) -> list[int]:
    """Live processes whose command name is `name` (e.g. the PostgreSQL server's processes)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm", encoding="ascii", errors="replace") as comm:
                if comm.read().strip() == name:
                    found.append(int(entry))
        except OSError:
            continue
    return found


def cpu_by_pid(pids: list[int]) -> dict[int, float]:
    times = {}
    for pid in pids:
        try:
            times[pid] = cpu_seconds(pid)
        except (OSError, IndexError, ValueError):
            continue
    return times


@dataclass
class CpuSnapshot:
    """CPU seconds of the machine and of the processes taking part, at one moment."""

    wall: float
    machine: float
    steal: float
    generator: float
    server: float
    fake_slack: float
    postgres: dict[int, float]

    @classmethod
    def take(cls, server_pid: int, fake_pid: int | None) -> CpuSnapshot:
        machine, steal = machine_cpu()
        return cls(
            wall=time.monotonic(),
            machine=machine,
            steal=steal,
            generator=time.process_time(),
            server=cpu_seconds(server_pid),
            fake_slack=cpu_seconds(fake_pid) if fake_pid else 0.0,
            postgres=cpu_by_pid(pids_named("postgres")),
        )

    def percent_since(self, before: CpuSnapshot) -> dict[str, float]:
        """Percent of one core over the interval (a 2-core machine tops out at 200 %)."""
        span = self.wall - before.wall

        def pct(seconds: float) -> float:
            return 100 * seconds / span if span > 0 else float("nan")

        # A PostgreSQL backend started during the interval counts from zero.
        postgres = sum(t - before.postgres.get(pid, 0.0) for pid, t in self.postgres.items())
        figures = {
            "machine": pct(self.machine - before.machine),
            "steal": pct(self.steal - before.steal),
            "generator": pct(self.generator - before.generator),
            "server": pct(self.server - before.server),
            "fake_slack": pct(self.fake_slack - before.fake_slack),
            "postgres": pct(postgres),
        }
        ours = sum(figures[k] for k in ("generator", "server", "fake_slack", "postgres"))
        figures["other"] = max(0.0, figures["machine"] - figures["steal"] - ours)
        return figures


class ServerFailed(RuntimeError):
    pass


@dataclass
class Server:
    """One server process. `start()` returns the cold start: spawn to the first 200 /readyz."""

    name: str
    argv: list[str]
    env: dict[str, str]
    base_url: str
    log_path: Path
    cwd: Path
    process: subprocess.Popen[bytes] | None = None
    _log: object = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def _spawn(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        log.write(f"---- {self.name}: {' '.join(self.argv)}\n".encode())
        log.flush()
        self._log = log
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a terminal's Ctrl-C reaches the benchmark, not the server
        )

    async def start(self, *, limit: float = 60.0, poll: float = 0.02) -> float:
        """Spawn, then poll /readyz every `poll` s; the seconds from spawn to the first 200."""
        ready_url = f"{self.base_url}/readyz"
        started = time.monotonic()
        self._spawn()
        assert self.process is not None
        timeouts = aiohttp.ClientTimeout(total=1.0)
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(timeout=timeouts, connector=connector) as session:
            while True:
                if self.process.poll() is not None:
                    raise ServerFailed(
                        f"{self.name} exited with {self.process.returncode} before it was ready; "
                        f"log tail:\n{self.log_tail()}"
                    )
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(ready_url) as response:
                        await response.read()
                        if response.status == 200:
                            return time.monotonic() - started
                if time.monotonic() - started > limit:
                    self.kill()
                    raise ServerFailed(f"{self.name} not ready after {limit:.0f}s")
                await asyncio.sleep(poll)

    async def stop(self, *, grace: float = 15.0) -> tuple[float, int | None, bool]:
        """SIGTERM and wait; SIGKILL after `grace` s. Returns (seconds, exit code, was killed)."""
        assert self.process is not None
        started = time.monotonic()
        killed = False
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.process.wait, grace)
            except subprocess.TimeoutExpired:
                killed = True
                self.kill()
        elapsed = time.monotonic() - started
        if self._log is not None:
            self._log.close()  # type: ignore[attr-defined]
            self._log = None
        return elapsed, self.process.returncode, killed

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


async def start_helper(
    argv: list[str], env: dict[str, str], cwd: Path
) -> tuple[asyncio.subprocess.Process, str]:
    """Start a helper process that prints one line (its address) on stdout when it is up."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
    if not line:
        raise ServerFailed(f"{argv!r} exited before printing its address")
    return process, line.decode().strip()


async def stop_helper(process: asyncio.subprocess.Process, grace: float = 5.0) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=grace)
        except TimeoutError:
            process.kill()
            await process.wait()
