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
    """bf16 where the hardware has it, unless SIGNBEST_BF16=0 turns it off for the whole process (every
    stage, evaluation and prediction: to compare with fp32, or where bf16 is suspected)."""
    if os.environ.get("SIGNBEST_BF16", "") == "0":
        return False
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


def set_threads(threads: int = 0, processes: int = 0) -> int:
    """torch's thread count, one policy: `threads` (the user's --threads), else OMP_NUM_THREADS when set,
    else the available cores shared among `processes` (default: the torchrun processes on this machine).
    Fixed for the whole run, never refitted to the machine's load, so a run's arithmetic (the order of its
    float sums) depends on the settings and not on what else the machine runs. Two trainings side by side
    should each be given their share (`--threads 1` on 2 cores): more threads than free cores spin
    against each other (bench/contention.py)."""
    if not threads and not processes and os.environ.get("OMP_NUM_THREADS", "").isdigit():
        threads = int(os.environ["OMP_NUM_THREADS"])  # the user's (or torchrun's) own setting wins
    if not threads:
        processes = processes or int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        threads = max(1, available_cores() // max(processes, 1))
    torch.set_num_threads(threads)
    return threads


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


def cache_dir() -> Path:
    """Where signbest keeps caches and its record of written files: $SIGNBEST_CACHE, else the user's cache
    folder. Never beside the data, which may be read-only."""
    root = os.environ.get("SIGNBEST_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "signbest"
    return Path(root)
