"""One reply at a time per backend instance, and a clear error instead of a deadlock.

A backend holds one key/value cache, so its replies are serialised. A second
reply started on the thread whose reply is still open (an iterator not yet
finished or closed) would wait for itself forever: :meth:`ReplyLock.acquire_for`
raises :class:`ModelError` instead. Other threads wait their turn.
"""

from __future__ import annotations

import threading

from companion.errors import ModelError


class ReplyLock:
    """A lock that knows which thread holds it; ``with lock:`` for short sections."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: int | None = None

    def acquire_for(self, name: str) -> None:
        """Take the lock for a reply of model ``name``."""
        me = threading.get_ident()
        if not self._lock.acquire(blocking=False):
            if self._owner == me:
                raise ModelError(
                    f"{name} is already generating a reply in this thread; "
                    "close that reply's iterator before starting another"
                )
            self._lock.acquire()
        self._owner = me

    def release(self) -> None:
        self._owner = None
        self._lock.release()

    def __enter__(self) -> ReplyLock:
        self._lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()
