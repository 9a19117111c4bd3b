"""Per-stage timings and counters of the server, for ``/metrics`` and ``/health``.

Stages of one chat-completion request, in seconds:

- ``queue``: from the request being accepted to its turn starting (waiting for
  the model, which generates one reply at a time, and for the user's previous turn);
- ``recall``: the memory search for the turn;
- ``prompt``: the rest of preparing the turn (persona state, prompt within the
  window, storing the user's message);
- ``first_token``: from the request being accepted to the first piece of the
  reply (queue included: what the client waits);
- ``total``: from the request being accepted to the reply's end.

Each keeps its last :data:`WINDOW` samples; summaries give count, mean, p50,
p95 and max in milliseconds. Thread-safe: turns run on worker threads.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from typing import Any

STAGES = ("queue", "recall", "prompt", "first_token", "total")
#: Samples kept per stage.
WINDOW = 2048


def percentile(values: list[float], q: float) -> float:
    """The ``q``-quantile (0..1) of ``values`` by the nearest-rank method (0.0 if empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))
    return ordered[rank]


class Metrics:
    """Timings by stage, request and error counts, and gauges of work in progress."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._samples: dict[str, deque[float]] = {s: deque(maxlen=WINDOW) for s in STAGES}
        self._counts: Counter[str] = Counter()
        self._errors: Counter[int] = Counter()
        self.started = time.monotonic()
        self.queued = 0
        self.running = 0

    def observe(self, stage: str, seconds: float) -> None:
        with self._lock:
            self._samples[stage].append(seconds)

    def count(self, name: str, n: int = 1) -> None:
        """Counters: ``requests``, ``streams``, ``completed``, ``interrupted``, ``tokens``."""
        with self._lock:
            self._counts[name] += n

    def error(self, status: int) -> None:
        with self._lock:
            self._errors[status] += 1

    def adjust(self, *, queued: int = 0, running: int = 0) -> None:
        with self._lock:
            self.queued += queued
            self.running += running

    def summary(self, stage: str) -> dict[str, float | int]:
        with self._lock:
            values = list(self._samples[stage])
        ms = [v * 1000 for v in values]
        return {
            "count": len(ms),
            "mean_ms": round(sum(ms) / len(ms), 2) if ms else 0.0,
            "p50_ms": round(percentile(ms, 0.50), 2),
            "p95_ms": round(percentile(ms, 0.95), 2),
            "max_ms": round(max(ms), 2) if ms else 0.0,
        }

    def snapshot(self) -> dict[str, Any]:
        """Everything, as JSON-ready data."""
        with self._lock:
            counts = dict(self._counts)
            errors = {str(k): v for k, v in sorted(self._errors.items())}
            queued, running = self.queued, self.running
        return {
            "uptime_s": round(time.monotonic() - self.started, 1),
            "requests": counts.get("requests", 0),
            "streams": counts.get("streams", 0),
            "completed": counts.get("completed", 0),
            "interrupted": counts.get("interrupted", 0),
            "completion_tokens": counts.get("tokens", 0),
            "errors": errors,
            "queued": queued,
            "running": running,
            "stages": {stage: self.summary(stage) for stage in STAGES},
        }

    def prometheus(self, labels: dict[str, str] | None = None) -> str:
        """The same in the Prometheus text format (summaries in seconds)."""
        snap = self.snapshot()
        base = ",".join(f'{k}="{_escape(v)}"' for k, v in (labels or {}).items())

        def tag(extra: str = "") -> str:
            inner = ",".join(p for p in (base, extra) if p)
            return f"{{{inner}}}" if inner else ""

        lines = [
            "# TYPE companion_requests_total counter",
            f"companion_requests_total{tag()} {snap['requests']}",
            "# TYPE companion_interrupted_total counter",
            f"companion_interrupted_total{tag()} {snap['interrupted']}",
            "# TYPE companion_completion_tokens_total counter",
            f"companion_completion_tokens_total{tag()} {snap['completion_tokens']}",
            "# TYPE companion_errors_total counter",
        ]
        for code, n in snap["errors"].items():
            status = f'status="{code}"'
            lines.append(f"companion_errors_total{tag(status)} {n}")
        lines += [
            "# TYPE companion_queued gauge",
            f"companion_queued{tag()} {snap['queued']}",
            "# TYPE companion_running gauge",
            f"companion_running{tag()} {snap['running']}",
        ]
        for stage, s in snap["stages"].items():
            name = f"companion_{stage}_seconds"
            lines.append(f"# TYPE {name} summary")
            for q, key in (("0.5", "p50_ms"), ("0.95", "p95_ms")):
                quantile = f'quantile="{q}"'
                lines.append(f"{name}{tag(quantile)} {s[key] / 1000:g}")
            lines.append(f"{name}_count{tag()} {s['count']}")
            lines.append(f"{name}_sum{tag()} {s['mean_ms'] * s['count'] / 1000:g}")
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
