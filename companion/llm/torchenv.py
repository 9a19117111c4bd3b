"""Importing torch the way every local-model module needs it.

One small module that the backend, the quantizer, the lean pass, the safetensors
reader and the converter all import, so that none of them imports another just
for this (that made a knot of import cycles in ``llm/``).
"""

from __future__ import annotations

import os
import sys
from typing import Any

#: libgomp's busy-wait before an idle worker sleeps (see :func:`import_torch`).
SPIN_COUNT = 10_000


def import_torch() -> Any:
    """Import torch; on first import, ask OpenMP to sleep rather than spin when idle.

    Spinning worker threads make decoding about 4x slower on a 2-core machine as
    soon as another process (speech synthesis, a test run) holds one core; sleeping
    costs about 5% on an idle machine. A decode step on the native kernels, though,
    opens ~120 short parallel regions, and waking a sleeping thread for each made
    2 threads slower than 1 (SmolLM2: 52 vs 75 tok/s): with ``GOMP_SPINCOUNT``
    (:data:`SPIN_COUNT`) a worker spins a few microseconds before it sleeps, which
    catches the next region of the same step (115 tok/s) without holding a core
    between replies. Values already in the environment are kept.
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        os.environ.setdefault("GOMP_SPINCOUNT", str(SPIN_COUNT))
    import torch

    return torch
