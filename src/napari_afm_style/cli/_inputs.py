"""Reading a command's input stack the same way in every command."""

from __future__ import annotations

import logging

__all__ = ["read_input_stack"]

log = logging.getLogger(__name__)


def read_input_stack(path):
    """:func:`~napari_afm_style.io.read_stack` of ``path``, with what the reader assumed or
    warned about (:func:`~napari_afm_style.io.reading_notes`) logged as notes naming the file."""
    from ..io import read_stack, reading_notes

    stack = read_stack(path)
    for note in reading_notes(stack):
        log.warning(f"{path}: note: {note}")
    return stack
