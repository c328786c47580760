"""Acks first: Slack waits 3 s for each ack (and redelivers an event it did not get in time), while the work
an input causes can wait. In a storm (hundreds of deliveries a second) the threads that handle inputs would
take most of the interpreter from the threads that ack them; they give way instead (`AckGate`).

Also the background pools that handle inputs once they are acked, and the observers of ack timings.
"""
import contextlib
import logging
import queue
import threading
import time

log = logging.getLogger(__name__)

# Who wants to know how long Slack waited for each ack (the plugin's metrics register here): f(kind, seconds).
ACK_OBSERVERS: list = []
GIVE_WAY_AT_MOST = 2.0  # seconds one input's handling waits for acks in flight (a long storm: then it goes on)


class AckGate:
    """Counts the acks on their way (`acking`); handling waits until there are none (`give_way`), at most
    GIVE_WAY_AT_MOST. A handler running inside an ack (a form's validation answer) must not give way."""

    def __init__(self, most: float = GIVE_WAY_AT_MOST):
        self.most = most
        self._cond = threading.Condition()
        self._acking = 0
        self._inside = threading.local()

    @contextlib.contextmanager
    def acking(self):
        with self._cond:
            self._acking += 1
        self._inside.depth = getattr(self._inside, "depth", 0) + 1
        try:
            yield
        finally:
            self._inside.depth -= 1
            with self._cond:
                self._acking -= 1
                if not self._acking:
                    self._cond.notify_all()

    def give_way(self) -> float:
        """Wait while acks are on their way (not from inside one); returns the seconds waited."""
        if getattr(self._inside, "depth", 0):
            return 0.0
        started = time.monotonic()
        with self._cond:
            if self._acking:
                self._cond.wait_for(lambda: not self._acking, timeout=self.most)
        return time.monotonic() - started


class Workers:
    """A few daemon threads that handle recorded inputs in the background (the process may exit at any
    moment: what they had not finished is in the inbox and replayed at the next start)."""

    def __init__(self, count: int, name: str, gate: AckGate | None = None):
        self._queue: queue.Queue = queue.Queue()
        self._gate = gate
        for n in range(count):
            threading.Thread(target=self._run, daemon=True, name=f"{name}-{n}").start()

    def submit(self, fn, *args) -> None:
        self._queue.put((fn, args))

    def _run(self) -> None:
        while True:
            fn, args = self._queue.get()
            try:
                if self._gate is not None:
                    self._gate.give_way()
                fn(*args)
            except Exception:
                log.exception("Handling a Slack input failed")


def observe_ack(kind: str, started: float) -> None:
    seconds = time.perf_counter() - started
    for observe in list(ACK_OBSERVERS):
        try:
            observe(kind, seconds)
        except Exception:
            log.debug("An ack observer failed", exc_info=True)
