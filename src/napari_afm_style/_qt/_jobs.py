"""Running long work off the GUI thread with a progress bar and a cancel button."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import importlib.util
import os
import sys
import threading
from typing import Callable

from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from ._background import background


class JobControls(QWidget):
    """Run button + progress bar + cancel button driving one background job at a time.

    ``start(gen_func, on_result)`` runs a generator function in a thread. The generator
    yields ``(done, total, message)`` to report progress and returns its result; it is
    cancelled between yields (napari's generator workers honour ``quit()``).
    """

    def __init__(self, run_text: str, parent=None):
        super().__init__(parent)
        self.run_button = QPushButton(run_text)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.run_button)
        row.addWidget(self.cancel_button)
        from qtpy.QtWidgets import QVBoxLayout

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        self.worker = None
        self.cancel_button.clicked.connect(self.cancel)

    @property
    def running(self) -> bool:
        return self.worker is not None

    def start(self, gen_func: Callable, on_result: Callable, *args, **kwargs):
        if self.worker is not None:
            self.status.setText("a job is still running: wait for it or cancel it first")
            return None
        worker = background(gen_func, *args, **kwargs)
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(lambda result, w=worker: self._deliver(w, on_result, result))
        worker.errored.connect(self._on_error)
        worker.finished.connect(lambda w=worker: self._release(w))
        self.worker = worker
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setRange(0, 0)  # busy until the first report
        self.status.setText("running…")
        worker.start()
        return worker

    def cancel(self):
        if self.worker is not None:
            self.worker.quit()
            self.status.setText("cancelling…")

    def _on_progress(self, report):
        done, total, message = report
        self.progress.setRange(0, max(int(total), 1))
        self.progress.setValue(int(done))
        self.status.setText(str(message))

    def _on_error(self, exc):
        # never let a bad input crash napari: show what went wrong and what to do
        self.status.setText(f"error: {exc}")
        show_error(f"{type(exc).__name__}: {exc}")

    def _deliver(self, worker, on_result: Callable, result):
        # free the slot before handing the result on: whoever reacts to a result (a test, a
        # script, the user) may start the next job before the thread's `finished` arrives
        # a job cancelled after its last step still returns: the user asked for no result
        aborted = getattr(worker, "abort_requested", False)
        self._release(worker)
        if not aborted:
            on_result(result)

    def _release(self, worker):
        if self.worker is not worker:
            return  # released when its result came, and perhaps another job holds the slot now
        aborted = getattr(worker, "abort_requested", False)
        self.worker = None
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(0 if aborted else 1)
        if aborted:
            self.status.setText("cancelled")
            show_info("cancelled")


# ------------------------------------------------------------------------------------
# Cold start: load the network in the background as soon as a dock opens
# ------------------------------------------------------------------------------------
_WARM_LOCK = threading.Lock()
_WARMED: set = set()  # (kind, model, device) loaded
_PRIMED: set = set()  # ... and run once
_COUNT_LOCK = threading.Lock()
_WAITING = [0]  # jobs waiting for a network: the background load then skips the dummy run
#: QSettings key of the remembered device choice
DEVICE_SETTING = "device"


def settings():
    """The plugin's own QSettings (remembered choices between sessions)."""
    from qtpy.QtCore import QSettings

    return QSettings("napari-afm-style", "gui")


def warm_up(kind: str, model: str | None, device: str, prime: bool = False) -> None:
    """Import torch and load the network onto ``device`` (the libraries' caches keep it).

    ``prime`` (the dock's background load) also runs the network once on a dummy stack,
    which pays the first call's one-time costs (allocations, kernel choice), unless a job
    is waiting for the network or has run it already (its own run paid those costs: a
    dummy run then would only take CPU from it). Idempotent; a job calls it first, so a
    job started during the warm-up waits for it instead of loading twice."""
    key = (kind, model, device)
    if not prime:
        with _COUNT_LOCK:
            _WAITING[0] += 1
    try:
        with _WARM_LOCK:
            _load(kind, model, device)
            if not prime:
                _PRIMED.add(key)
            elif key not in _PRIMED and _WAITING[0] == 0:
                _prime(kind, model, device)
                _PRIMED.add(key)
    finally:
        if not prime:
            with _COUNT_LOCK:
                _WAITING[0] -= 1


def _prepare_imports(kind):
    """Import what a job of ``kind`` needs, torch last (call with ``_WARM_LOCK`` held; the
    dock's warm-up or a job pressed before it, whichever comes first).

    torch's C++ libraries load without the GIL in a helper thread while this one imports
    the job's own module (scipy) and what showing its result needs (pandas): Python that
    would otherwise compete for the GIL with the network's first run (each of its layers
    waits for the GIL between operations). The cyclic collector is paused meanwhile and
    the heap frozen at the end (:func:`collector_paused`, :func:`freeze_startup_heap`)."""
    modules = (f"{__package__.rpartition('.')[0]}.{kind}",) + DISPLAY_MODULES
    if "torch" in sys.modules and all(name in sys.modules for name in modules):
        return
    with collector_paused():
        preload = threading.Thread(target=preload_torch_libraries, name="torch-preload", daemon=True)
        preload.start()
        for name in modules:
            importlib.import_module(name)
        preload.join()
        importlib.import_module("torch")
        leave_a_core_for_the_window()
        freeze_startup_heap()  # before the collector runs again: no full walk of that heap


def _load(kind, model, device):
    """Load the network once (call with ``_WARM_LOCK`` held)."""
    key = (kind, model, device)
    if key in _WARMED:
        return
    _prepare_imports(kind)
    if kind == "predict":
        from ..predict import load_model

        load_model(model, device)
    else:
        from ..translate import load_translator

        load_translator(model)  # the job moves it to a GPU (cached there) when chosen
    _WARMED.add(key)


def _prime(kind, model, device):
    import numpy as np

    from ..stack import AFMStack

    data = np.random.default_rng(0).normal(size=(10, 128, 128)).astype(np.float32)
    dummy = AFMStack(data, heights_A=0.9 - 0.1 * np.arange(10), pixel_size_A=0.125, origin_A=(0.0, 0.0),
                     metadata={"height_frame": "relative: 0 = closest slice, positive = farther"})
    if kind == "predict":
        from ..predict import predict_maps

        predict_maps(dummy, model=model, device=device, test_time_augmentation=1)
    else:
        from ..translate import prepare_translation

        prepare_translation(dummy, "backward", model=model, device=device)


#: modules napari imports on the GUI thread the first time a dock shows its result (pandas:
#: the feature table of the predicted Points layer, 0.1–0.4 s); the background warm-up
#: imports them first
DISPLAY_MODULES = ("pandas",)
_GC_LOCK = threading.Lock()
_GC_STATE = {"depth": 0, "was_enabled": False}


@contextlib.contextmanager
def collector_paused():
    """Pause Python's cyclic garbage collector while the warm-up imports torch, scipy and
    pandas (nested and concurrent uses allowed; it is switched back on only if it was on).

    Those imports allocate some 10⁵ long-lived objects and almost no garbage cycles, yet
    the allocations trigger full collections that walk the whole heap, napari's included,
    with the GIL held: 0.1–0.3 s each, during which the window cannot repaint. Reference
    counting still frees everything else meanwhile."""
    with _GC_LOCK:
        if _GC_STATE["depth"] == 0:
            _GC_STATE["was_enabled"] = gc.isenabled()
            gc.disable()
        _GC_STATE["depth"] += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _GC_STATE["depth"] -= 1
            if _GC_STATE["depth"] == 0 and _GC_STATE["was_enabled"]:
                gc.enable()


#: torch's own C++ libraries (no Python in them), loaded ahead of ``import torch``
TORCH_LIBRARIES = ("libc10.so", "libtorch_cpu.so")
_FROZEN = [False]


def preload_torch_libraries() -> int:
    """Load torch's C++ libraries with the GIL released; returns how many were loaded.

    ``import torch`` loads ~0.5 GB of shared libraries through Python's importer, which
    holds the GIL for the whole ``dlopen`` (0.2–0.3 s: relocations and the static
    initialisers that register the operators), so the GUI thread cannot run meanwhile.
    Calling the C library's ``dlopen`` through ctypes releases the GIL for that call; the
    importer then finds the libraries already loaded. Linux only; on failure (another
    platform, another layout of the torch package) ``import torch`` simply loads them."""
    if not sys.platform.startswith("linux") or "torch" in sys.modules:
        return 0
    try:
        spec = importlib.util.find_spec("torch")
        folder = os.path.join(list(spec.submodule_search_locations)[0], "lib")
        dlopen = ctypes.CDLL(None).dlopen
        dlopen.restype = ctypes.c_void_p
        dlopen.argtypes = [ctypes.c_char_p, ctypes.c_int]
    except (AttributeError, ImportError, OSError, TypeError, IndexError):
        return 0
    loaded = 0
    for name in TORCH_LIBRARIES:
        path = os.path.join(folder, name)
        if os.path.isfile(path) and dlopen(os.fsencode(path), os.RTLD_NOW | os.RTLD_LOCAL):
            loaded += 1
    return loaded


def freeze_startup_heap() -> bool:
    """Once per process, after the first warm-up: move every object alive now (napari,
    torch, the loaded networks) out of the cyclic collector's sight (``gc.freeze``).

    A full collection walks every tracked object with the GIL held; with napari and torch
    loaded that is ~5·10⁵ objects and 0.2–0.3 s of frozen window, every time enough new
    objects have piled up (adding layers does that). Frozen objects are still freed by
    reference counting; only a reference cycle among them is never collected (a layer
    open at that moment and closed much later keeps its memory). Returns True when it froze."""
    with _GC_LOCK:
        if _FROZEN[0]:
            return False
        _FROZEN[0] = True
    gc.freeze()
    return True


#: environment variables by which a person sets torch's CPU threads themselves
THREAD_SETTINGS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TORCH_NUM_THREADS")


def leave_a_core_for_the_window() -> int:
    """Run torch's CPU work on all cores but one (at least one); returns the thread count.

    By default torch spreads each operation over every core, and its threads wait for one
    another at the end of each layer. In the GUI the window's own thread, the X server and
    the compositor need a core too: with every core busy they take turns with torch's
    threads, torch waits on the descheduled one (a 0.1 s prediction took 0.9 s on two busy
    cores) and the window stutters. Set by the docks only (the API and CLI keep torch's
    default), and not when one of :data:`THREAD_SETTINGS` is set."""
    import torch

    if any(os.environ.get(name) for name in THREAD_SETTINGS):
        return torch.get_num_threads()
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    wanted = max(1, cores - 1)
    if torch.get_num_threads() > wanted:
        torch.set_num_threads(wanted)
    return torch.get_num_threads()


def available_devices() -> list[str]:
    """Torch devices this machine offers: "cpu", then "cuda:N" for every visible GPU."""
    from .._device import torch_devices

    preload_torch_libraries()
    return [d["name"] for d in torch_devices()]


def _warm_job(kind, model, device):
    with _WARM_LOCK:
        _prepare_imports(kind)  # (or wait for a job pressed at once to do it)
    devices = available_devices()
    warm_up(kind, model, device if device in devices else "cpu", prime=True)
    return devices


class StackJobWidget(QWidget):
    """Base of the docks that run one job on a chosen Δf stack layer: a magicgui form (a
    stack picker that follows the layer list, the subclass's controls, the device) above
    :class:`JobControls`."""

    #: "predict" or "translate": which network :meth:`start_warm_up` loads
    warm_kind = None

    def __init__(self, napari_viewer, run_text: str, parent=None):
        super().__init__(parent)
        from magicgui.widgets import ComboBox, Container
        from qtpy.QtWidgets import QVBoxLayout

        from ._layer_choice import LayerPicker, is_stack_layer, keep_atoms_visible

        self.viewer = napari_viewer
        self.image = LayerPicker(napari_viewer, "image", accept=is_stack_layer, label="Δf stack")
        self.jobs = JobControls(run_text)
        # CPU, plus the GPUs torch sees (filled in by the background warm-up, which imports
        # torch off the GUI thread); the choice is remembered between sessions
        self._wanted_device = str(settings().value(DEVICE_SETTING, "cpu"))
        self.device = ComboBox(choices=["cpu"], value="cpu", label="device")
        self.device.changed.connect(self._device_chosen)
        self.warm_worker = None
        self.warm = False  # True once the network is loaded
        self.warm_finished = False  # True once the background load ended (loaded or not)
        self.form = Container(widgets=[self.image], labels=True)
        self.form.margins = (0, 0, 0, 0)
        layout = QVBoxLayout(self)
        layout.addWidget(self.form.native)
        layout.addWidget(self.jobs)
        layout.addStretch(1)
        self.jobs.run_button.clicked.connect(self.run)
        keep_atoms_visible(napari_viewer)

    def warm_model(self):  # pragma: no cover - subclasses
        return None

    def add_fields(self, *widgets):
        """Append magicgui widgets to the form (labelled rows)."""
        for widget in widgets:
            self.form.append(widget)

    def add_device_row(self):
        self.form.append(self.device)

    def start_warm_up(self):
        """Load the network (and find the GPUs) in a background thread."""
        if self.warm_kind is None:
            return None
        worker = background(_warm_job, self.warm_kind, self.warm_model(), self._wanted_device)
        worker.returned.connect(self._warmed)
        worker.errored.connect(lambda exc: self.jobs.status.setText(f"model not loaded: {exc}"))
        worker.finished.connect(lambda: setattr(self, "warm_finished", True))
        self.warm_worker = worker
        self.jobs.status.setText("loading the model in the background…")
        # started once the dock is built and docked (the next pass of the event loop): its
        # imports would otherwise take the GIL from the GUI thread while it lays the dock out
        from qtpy.QtCore import QTimer

        QTimer.singleShot(0, worker.start)
        return worker

    def _warmed(self, devices):
        with self.device.changed.blocked():
            self.device.choices = devices
            self.device.value = self._wanted_device if self._wanted_device in devices else "cpu"
        self.warm = True
        if not self.jobs.running and self.jobs.status.text().startswith("loading the model"):
            self.jobs.status.setText(f"model ready ({self.device_value})")

    def _device_chosen(self, name):
        if name:
            self._wanted_device = name
            settings().setValue(DEVICE_SETTING, name)

    @property
    def device_value(self) -> str:
        return self.device.value or "cpu"

    def selected_stack(self):
        """(layer, AFMStack) of the chosen layer, or None with the reason in the status."""
        from .._layers import stack_from_layer

        layer = self.image.layer()
        if layer is None:
            self.jobs.status.setText("open a Δf stack first (File ▸ Open, or a sample)")
            return None
        try:
            return layer, stack_from_layer(layer)
        except ValueError as e:
            self.jobs.status.setText(str(e))
            return None

    def run(self):  # pragma: no cover - subclasses
        raise NotImplementedError
