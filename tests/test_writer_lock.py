"""The SQLite writer lock (storage.WriterLock): one writer at a time, reentrant, urgent writers (inputs
recorded before Slack's ack) ahead of waiting ordinary ones, and a release wakes one waiter, not all."""
from __future__ import annotations

import threading
import time

from opg_incident_core.storage import WriterLock


def wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_reentrant_and_exclusive():
    lock, inside, most = WriterLock(), [0], [0]
    guard = threading.Lock()

    def writer():
        for _ in range(200):
            with lock.held():
                with lock.held(urgent=True):  # the same thread again: no deadlock
                    with guard:
                        inside[0] += 1
                        most[0] = max(most[0], inside[0])
                    time.sleep(0)
                    with guard:
                        inside[0] -= 1

    threads = [threading.Thread(target=writer) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert most[0] == 1


def test_urgent_writers_go_before_waiting_ordinary_ones():
    lock, order = WriterLock(), []

    def writer(name: str, urgent: bool):
        with lock.held(urgent=urgent):
            order.append(name)

    with lock.held():
        first = threading.Thread(target=writer, args=("ordinary", False))
        first.start()
        wait_until(lambda: lock._waiting[False] == 1)
        second = threading.Thread(target=writer, args=("urgent", True))
        second.start()
        wait_until(lambda: lock._waiting[True] == 1)
    for t in (first, second):
        t.join(5)
    assert order == ["urgent", "ordinary"]


def test_a_release_wakes_one_waiter():
    """Five writers wait; each release must wake exactly the one that goes next (woken threads that find the
    lock taken would wait again: the wake-ups counted here would then exceed the handovers)."""
    lock, wakeups = WriterLock(), [0]
    for cond in lock._turn.values():
        original = cond.wait

        def counting_wait(timeout=None, _original=original):
            result = _original(timeout)
            wakeups[0] += 1
            return result
        cond.wait = counting_wait

    def writer():
        with lock.held():
            time.sleep(0.01)

    threads = [threading.Thread(target=writer) for _ in range(5)]
    with lock.held():
        for t in threads:
            t.start()
        wait_until(lambda: lock._waiting[False] == 5)
    for t in threads:
        t.join(5)
    assert wakeups[0] == 5
