"""Dock widgets. Thin: each owns a model object from the pure API and runs long work
off the GUI thread (napari.qt.threading.thread_worker) with progress and cancel."""
