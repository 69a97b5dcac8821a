"""Run-time pieces every command shares: seeding, bf16 autocast, progress bars, time budgets, metric logs."""
from __future__ import annotations

import contextlib
import csv
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .atomic import atomic_write


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    # On CPUs without native bf16 (avx512_bf16 / AMX), autocast emulates it and runs slower than fp32.
    return _has_cpu_flag("avx512_bf16") or _has_cpu_flag("amx_bf16")


def _has_cpu_flag(flag: str) -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            return any(flag in line.split() for line in f if line.startswith("flags"))
    except OSError:
        return False


def autocast(device: torch.device, enabled: bool = True):
    """bf16 autocast where the hardware supports it, else a no-op (fp32)."""
    if enabled and bf16_supported(device):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


_LOAD_AWARE_SHARE: int | None = None  # set when signbest chose the thread count: refitted to the load each epoch


def busy_cores_elsewhere(window: float = 0.2) -> float:
    """Cores kept busy by other processes during `window` seconds: the machine's busy time in /proc/stat
    minus this process's own CPU time (all its threads). 0.0 where /proc/stat cannot be read."""
    def busy_and_total() -> tuple[int, int]:
        with open("/proc/stat") as f:
            jiffies = [int(v) for v in f.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
        return sum(jiffies) - jiffies[3] - jiffies[4], sum(jiffies)
    try:
        (b0, t0), own0 = busy_and_total(), sum(os.times()[:2])
        time.sleep(window)
        (b1, t1), own1 = busy_and_total(), sum(os.times()[:2])
    except (OSError, ValueError):
        return 0.0
    if t1 <= t0:
        return 0.0
    elapsed_cores = (t1 - t0) / (os.cpu_count() or 1)  # jiffies per core in the window
    return max(0.0, (b1 - b0) / elapsed_cores - (own1 - own0) / window)


def set_threads(threads: int = 0, processes: int = 0) -> int:
    """torch's thread count: `threads`, else OMP_NUM_THREADS when set, else the available cores shared
    among `processes` (default: the torchrun processes on this machine) less the cores other processes
    keep busy now. Threads that outnumber the free cores spin against the other processes: beside one busy
    process a 2-thread `small` training step ran 3.8x slower than alone, a 1-thread step 2.1x slower
    (`bench/contention.py`). When signbest chooses, training fits the count to the free cores before every
    epoch (`refit_threads`, 0.2 s); commands that do not train (and `--help`) never wait for a measurement."""
    global _LOAD_AWARE_SHARE
    if not threads and not processes and os.environ.get("OMP_NUM_THREADS", "").isdigit():
        threads = int(os.environ["OMP_NUM_THREADS"])  # the user's (or torchrun's) own setting wins
    if threads:
        _LOAD_AWARE_SHARE = None
        torch.set_num_threads(threads)
        return threads
    processes = processes or int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    _LOAD_AWARE_SHARE = max(1, available_cores() // max(processes, 1))
    torch.set_num_threads(_LOAD_AWARE_SHARE)  # the load is measured where it pays: before each training epoch
    return _LOAD_AWARE_SHARE


def refit_threads() -> int:
    """Fit torch's threads to the cores free now, up to this process's share; a no-op (returning the
    current count) when the count was given by --threads or OMP_NUM_THREADS."""
    if _LOAD_AWARE_SHARE is None:
        return torch.get_num_threads()
    free = available_cores() - round(busy_cores_elsewhere())
    n = max(1, min(_LOAD_AWARE_SHARE, free))
    if n != torch.get_num_threads():
        torch.set_num_threads(n)
    return n


@contextlib.contextmanager
def fixed_threads():
    """Hold torch's thread count for the block: signbest's own choice stays at its full share, with no refits
    to the load, so a result that must not depend on what else the machine runs (`signbest demo`) sums in
    the same order every time. A count given by --threads or OMP_NUM_THREADS is kept as it is."""
    global _LOAD_AWARE_SHARE
    share = _LOAD_AWARE_SHARE
    if share is not None:
        torch.set_num_threads(share)
    _LOAD_AWARE_SHARE = None
    try:
        yield torch.get_num_threads()
    finally:
        _LOAD_AWARE_SHARE = share


def progress_bar_kwargs(enabled: bool) -> dict:
    """tqdm settings: live on a terminal; in a log file or CI a line every 30 s instead of a flood."""
    if not enabled:
        return {"disable": True}
    return {"leave": False} if sys.stderr.isatty() else {"mininterval": 30.0, "leave": False}


class MetricsLog:
    """Appends one row per call to metrics.csv (columns fixed by the first row) and redraws a PNG."""

    def __init__(self, folder: Path, name: str = "metrics", plot_keys: tuple[str, ...] = ()):
        Path(folder).mkdir(parents=True, exist_ok=True)
        self.path = Path(folder) / f"{name}.csv"
        self.png = Path(folder) / f"{name}.png"
        self.plot_keys = plot_keys
        self.fields: list[str] | None = None
        if self.path.exists():
            with open(self.path, newline="") as f:
                self.fields = next(csv.reader(f), None)
        self.tb = None
        with contextlib.suppress(ImportError):
            from torch.utils.tensorboard import SummaryWriter  # optional: only when tensorboard is installed
            self.tb = SummaryWriter(str(Path(folder) / "tensorboard"))

    def truncate_after(self, key: str, value: float) -> None:
        """Drop rows logged after a resume point, so a resumed run does not duplicate them."""
        if not self.path.exists():
            return
        with open(self.path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if float(r[key]) <= value]
        self._write_all(rows)

    def _write_all(self, rows: list[dict]) -> None:
        def write(tmp):
            with open(tmp, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=self.fields or [])
                w.writeheader()
                w.writerows(rows)
        atomic_write(self.path, write)

    def log(self, row: dict) -> None:
        row = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()}
        new = self.fields is None
        if new:
            self.fields = list(row)
        with open(self.path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.fields, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(row)
        if self.tb is not None:
            step = row.get("step", row.get("epoch", 0))
            for k, v in row.items():
                if isinstance(v, (int, float)):
                    self.tb.add_scalar(k, v, step)
        if self.plot_keys:
            self.plot()

    def rows(self) -> list[dict]:
        if not self.path.exists():
            return []
        with open(self.path, newline="") as f:
            return list(csv.DictReader(f))

    def plot(self) -> None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = self.rows()
        keys = [k for k in self.plot_keys if rows and k in rows[0]]
        if not keys:
            return
        x_key = "epoch" if "epoch" in rows[0] else "step"
        fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3), squeeze=False)
        for ax, k in zip(axes[0], keys):
            xs = [float(r[x_key]) for r in rows if r.get(k) not in ("", None)]
            ys = [float(r[k]) for r in rows if r.get(k) not in ("", None)]
            ax.plot(xs, ys, marker="o" if len(xs) < 30 else None)
            ax.set_xlabel(x_key)
            ax.set_title(k)
            ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(self.png, dpi=80)
        plt.close(fig)


class TimeBudget:
    """Stops a stage after `seconds` (0 = never), so a slow machine still finishes."""

    def __init__(self, seconds: float):
        self.seconds, self.start = seconds, time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def exhausted(self) -> bool:
        return self.seconds > 0 and self.elapsed >= self.seconds
