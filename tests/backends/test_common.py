"""Ctrl-C held back while a driver's resources are given back (``backends._common``)."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import pytest

from queryref.backends._common import interruptible, uninterrupted


def _ctrl_c() -> None:
    """SIGINT to this process, delivered to Python's handler before this returns."""
    os.kill(os.getpid(), signal.SIGINT)
    signal.pthread_sigmask(signal.SIG_BLOCK, [])  # (a call the handler runs after)


def test_ctrl_c_inside_waits_for_the_block_to_end() -> None:
    steps: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        with uninterrupted():
            steps.append("released")
            _ctrl_c()
            steps.append("marked closed")
        steps.append("never")
    assert steps == ["released", "marked closed"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_handler_of_the_callers_gets_the_signal_after_the_block() -> None:
    seen: list[tuple[int, str]] = []

    def handler(signum: int, frame: Any) -> None:
        seen.append((signum, "inside" if inside else "after"))

    previous = signal.signal(signal.SIGINT, handler)
    try:
        with uninterrupted():
            inside = True
            _ctrl_c()
            assert seen == []
            inside = False
        assert seen == [(signal.SIGINT, "after")]
        assert signal.getsignal(signal.SIGINT) is handler
    finally:
        signal.signal(signal.SIGINT, previous)


def test_off_the_main_thread_it_changes_nothing() -> None:
    out: list[object] = []

    def work() -> None:
        with uninterrupted():
            out.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert out == [signal.default_int_handler]


def test_interruptible_hands_back_the_value_or_the_error() -> None:
    assert interruptible(lambda: 6 * 7, cancel=lambda: None) == 42
    with pytest.raises(ZeroDivisionError):
        interruptible(lambda: 1 // 0, cancel=lambda: None)


def test_ctrl_c_during_interruptible_cancels_until_the_call_returns() -> None:
    release = threading.Event()
    cancels: list[float] = []

    def blocked() -> str:
        release.wait(5)
        return "finished"

    def cancel() -> None:
        cancels.append(1.0)
        if len(cancels) >= 3:
            release.set()

    timer = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            interruptible(blocked, cancel)
    finally:
        timer.join()
    assert release.is_set() and len(cancels) >= 3
