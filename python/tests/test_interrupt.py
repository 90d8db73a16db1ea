"""Ctrl-C (SIGINT) stops a running computation at its next step."""
import os
import signal
import sys
import threading

import numpy as np
import pytest

import vector_accelerate as va

pytestmark = [
    pytest.mark.skipif(
        sys.platform == "win32" or threading.current_thread() is not threading.main_thread(),
        reason="SIGINT reaches Python's main thread on POSIX only",
    ),
    # A process started with SIGINT ignored (a background job of a shell)
    # keeps it ignored: Ctrl-C raises nothing there.
    pytest.mark.skipif(
        sys.platform != "win32" and signal.getsignal(signal.SIGINT) is signal.SIG_IGN,
        reason="SIGINT is ignored in this process",
    ),
]


def interrupt_after(seconds):
    t = threading.Timer(seconds, lambda: os.kill(os.getpid(), signal.SIGINT))
    t.start()
    return t


def test_ctrl_c_stops_a_long_knn_and_the_next_call_works():
    r = np.random.default_rng(0)
    # Minutes of work on two cores: only an interrupt inside the library ends it early.
    xb = r.standard_normal((400_000, 64), np.float32)
    xq = r.standard_normal((100_000, 64), np.float32)
    timer = interrupt_after(0.5)
    with va.Device("cpu"):
        with pytest.raises(KeyboardInterrupt) as info:
            va.knn(xq, xb, 10)
    timer.join()
    if sys.version_info >= (3, 11):
        assert "vector_accelerate: interrupted" in " ".join(getattr(info.value, "__notes__", []))
    D, I = va.knn(xq[:3], xb[:100], 2)
    assert I.shape == (3, 2) and (I >= 0).all()
