"""Background workers of the docks, and a clean exit while one still runs."""

from __future__ import annotations

import atexit
import threading
import weakref

from napari.qt.threading import thread_worker

#: how long the interpreter's exit waits for running workers (ms): a model still loading
#: (import torch, 1–3 s) or a job that stops at its next progress report
EXIT_WAIT_MS = 30_000

_RUNNING: weakref.WeakSet = weakref.WeakSet()
_HOOKED = [False]
_LOCK = threading.Lock()


def background(func, *args, **kwargs):
    """A napari worker running ``func(*args, **kwargs)`` in a thread, not yet started.

    A generator function gives a generator worker (progress by ``yielded``, cancelled by
    ``quit()`` between yields). The worker is waited for when the interpreter exits:
    PyQt destroys every Qt object at exit, and a worker whose signals are gone when it
    reports its result takes the whole process down (Qt aborts on the error), e.g. when
    the window is closed while a model still loads."""
    worker = thread_worker(func, start_thread=False)(*args, **kwargs)
    with _LOCK:
        _RUNNING.add(worker)
        if not _HOOKED[0]:
            # registered after PyQt's own exit handler, so it runs before it
            atexit.register(finish_running_workers)
            _HOOKED[0] = True
    worker.finished.connect(lambda: _RUNNING.discard(worker))
    return worker


def finish_running_workers(wait_ms: int = EXIT_WAIT_MS) -> bool:
    """Ask the running jobs to stop at their next report and wait for every worker thread
    (at most ``wait_ms``); True when none is left running."""
    from qtpy.QtCore import QThreadPool

    for worker in list(_RUNNING):
        quit_ = getattr(worker, "quit", None)
        if callable(quit_):
            try:
                quit_()
            except RuntimeError:  # its Qt side is gone already
                pass
    return QThreadPool.globalInstance().waitForDone(wait_ms)
