"""What a process costs, read from ``/proc``: resident memory and CPU time."""

import os
from dataclasses import dataclass
from pathlib import Path

TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    """Return the resident set size of process ``pid`` in KiB (``VmRSS``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_s(pid: int) -> float:
    """Return the CPU time (user + system) process ``pid`` has used, in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name may hold spaces; the fields after it do not.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S


@dataclass(frozen=True)
class Machine:
    """The machine a bench ran on."""

    cpus: int
    model: str
    memory_gib: float
    load: str

    @classmethod
    def here(cls) -> "Machine":
        """Describe this machine, with its load average right now."""
        model = "unknown CPU"
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        memory_kib = 0
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
                break
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        return cls(
            cpus=os.cpu_count() or 1,
            model=model,
            memory_gib=memory_kib / 1024 / 1024,
            load=load,
        )

    def describe(self) -> str:
        return (
            f"{self.cpus} CPUs ({self.model}), {self.memory_gib:.1f} GiB, "
            f"load average {self.load}"
        )
