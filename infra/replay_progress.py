"""What a replay reports while it runs, and a plain progress line for a terminal.

No dependency: one line on stderr, rewritten in place on a terminal (`\\r`) at most a
few times a second, or printed whole every few seconds when stderr is a file or a
pipe (so logs stay readable). It shows the phase, the share done, the rate (events/s
while projecting, rows/s while loading) and the time left at that rate.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, TextIO


@dataclass(frozen=True)
class Progress:
    phase: str  # project | load | catch-up | switch | done
    done: int
    total: int
    unit: str  # events | rows
    elapsed: float  # seconds since this phase started
    overall_elapsed: float  # seconds since the replay started

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        rate = self.rate
        if rate <= 0 or self.total <= self.done:
            return None if self.total > self.done else 0.0
        return (self.total - self.done) / rate

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"rate": self.rate, "eta": self.eta}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Progress:
        return cls(
            phase=str(raw["phase"]),
            done=int(raw["done"]),
            total=int(raw["total"]),
            unit=str(raw["unit"]),
            elapsed=float(raw["elapsed"]),
            overall_elapsed=float(raw["overall_elapsed"]),
        )


ProgressFn = Callable[[Progress], None]


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "--"
    seconds = int(seconds + 0.5)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def render(p: Progress, width: int = 24) -> str:
    share = min(p.done / p.total, 1.0) if p.total else 1.0
    filled = int(share * width)
    bar = "#" * filled + "-" * (width - filled)
    return (
        f"{p.phase:<8} [{bar}] {share * 100:5.1f}%  {p.done:,}/{p.total:,} {p.unit}  "
        f"{p.rate:,.0f} {p.unit}/s  ETA {_duration(p.eta)}"
    )


class ProgressLine:
    """A `ProgressFn` that draws `render(progress)` on a stream (stderr by default)."""

    def __init__(self, stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream or sys.stderr
        self._tty = bool(getattr(self._stream, "isatty", lambda: False)())
        self._clock = clock
        self._last = -1e9
        self._phase = ""
        self._width = 0

    def __call__(self, p: Progress) -> None:
        now = self._clock()
        finished = p.done >= p.total
        changed = p.phase != self._phase
        if not (changed or finished or now - self._last >= (0.2 if self._tty else 5.0)):
            return
        if changed and self._phase and self._tty:
            self._stream.write("\n")
        self._phase, self._last = p.phase, now
        line = render(p)
        if self._tty:
            self._stream.write("\r" + line.ljust(self._width))
            self._width = len(line)
        else:
            self._stream.write(line + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._tty and self._phase:
            self._stream.write("\n")
            self._stream.flush()
