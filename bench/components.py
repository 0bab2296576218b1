"""CPU time of the pipeline's components, from /proc: the service's processes, RabbitMQ, PostgreSQL, the
bench's own process and the whole machine, read before and after a timed run.

PostgreSQL is many processes and its backends come and go: its total is every live process of the
cluster plus what the postmaster's exited children spent (the kernel adds a reaped child's time to its
parent's `cutime` and `cstime`), so a backend that exits during a run is still counted. A child that
exits between the read of its own figures and the read of the postmaster's is counted twice, or not at
all; that is one backend's lifetime, small beside a run's figures. RabbitMQ is the `beam.smp` process,
all of its schedulers being threads of it. Both are the broker's and the cluster's totals: anything else
on the machine using them at the time (another test suite) is counted too, which the machine's own
figure, compared with the sum of the components, shows.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Stat:
    comm: str
    ppid: int
    own: float
    """utime + stime, seconds."""
    children: float
    """cutime + cstime: the reaped children's, seconds."""


def stat(pid: int) -> Stat | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    head, tail = text.rsplit(")", 1)
    fields = tail.split()
    return Stat(
        comm=head.split("(", 1)[1],
        ppid=int(fields[1]),
        own=(int(fields[11]) + int(fields[12])) / TICK,
        children=(int(fields[13]) + int(fields[14])) / TICK,
    )


def processes() -> dict[int, Stat]:
    found: dict[int, Stat] = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (row := stat(int(name))) is not None:
            found[int(name)] = row
    return found


def postgres_seconds(table: dict[int, Stat]) -> float | None:
    """The CPU of every PostgreSQL cluster on the machine so far, exited backends included."""
    ours = {pid: row for pid, row in table.items() if row.comm == "postgres"}
    postmasters = [pid for pid, row in ours.items() if row.ppid not in ours]
    if not postmasters:
        return None
    return sum(ours[pid].own + ours[pid].children for pid in postmasters) + sum(
        row.own + row.children for row in ours.values() if row.ppid in postmasters
    )


def rabbitmq_seconds(table: dict[int, Stat]) -> float | None:
    beams = [row.own for row in table.values() if row.comm == "beam.smp"]
    return sum(beams) if beams else None


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent not idle, summed over its cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / TICK


def pids_seconds(pids: Iterable[int]) -> dict[int, float]:
    """The CPU of each of these processes so far (those still there)."""
    found: dict[int, float] = {}
    for pid in pids:
        if (row := stat(pid)) is not None:
            found[pid] = row.own
    return found


@dataclass(frozen=True, slots=True)
class Snapshot:
    at: float
    service: dict[int, float]
    backends: dict[int, float]
    rabbitmq: float | None
    postgres: float | None
    bench: float
    machine: float

    @classmethod
    def take(cls, service: Iterable[int], backends: Iterable[int] = ()) -> Snapshot:
        table = processes()
        return cls(
            at=time.perf_counter(),
            service=pids_seconds(service),
            backends=pids_seconds(backends),
            rabbitmq=rabbitmq_seconds(table),
            postgres=postgres_seconds(table),
            bench=table[os.getpid()].own,
            machine=machine_busy_seconds(),
        )


@dataclass
class Meter:
    """CPU per event of each component between `start()` and `stop(events)`, in microseconds.

    `service` are the pids of the service's processes (or of the baseline's), summed; `backends` the
    PostgreSQL backends serving the bench's own database, counted when there both at the start and at
    the end (the service's pool keeps its connections), which leaves out the rest of the cluster."""

    service: list[int]
    backends: list[int] = field(default_factory=list)
    _start: Snapshot | None = None

    def start(self) -> None:
        self._start = Snapshot.take(self.service, self.backends)

    def stop(self, events: int) -> dict[str, object]:
        assert self._start is not None, "start() first"
        begin, end = self._start, Snapshot.take(self.service, self.backends)

        def us(seconds: float | None) -> float | None:
            return None if seconds is None else round(seconds / events * 1e6, 1)

        def delta(before: float | None, after: float | None) -> float | None:
            return None if before is None or after is None else after - before

        by_process = {pid: end.service[pid] - begin.service[pid] for pid in begin.service if pid in end.service}
        backends = sum(end.backends[pid] - begin.backends[pid] for pid in begin.backends if pid in end.backends)
        machine = end.machine - begin.machine
        return {
            "service_cpu_us_per_event": us(sum(by_process.values())),
            "service_cpu_us_per_event_by_process": [us(by_process[pid]) for pid in sorted(by_process)],
            "rabbitmq_cpu_us_per_event": us(delta(begin.rabbitmq, end.rabbitmq)),
            "postgres_cpu_us_per_event": us(delta(begin.postgres, end.postgres)),
            "postgres_backends_cpu_us_per_event": us(backends) if self.backends else None,
            "bench_cpu_us_per_event": us(end.bench - begin.bench),
            "machine_cpu_us_per_event": us(machine),
            "machine_busy": round(machine / (end.at - begin.at) / (os.cpu_count() or 1), 2),
        }
