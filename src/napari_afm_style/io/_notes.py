"""What a reader assumed or warned about, in words for the person who opened the file."""

from __future__ import annotations

__all__ = ["reading_notes"]


def reading_notes(stack) -> list[str]:
    """What the reader had to assume or warn about, worth telling the person opening the
    file: its warnings, and a pixel size or heights that the file did not give."""
    meta = stack.metadata
    notes = [str(w) for w in meta.get("warnings", [])]
    if meta.get("pixel_size_source") == "default":
        notes.append(f"the file gives no pixel size; {stack.pixel_size_A:g} Å assumed (atom positions "
                     "and the model's reading scale with it: check it)")
    if meta.get("heights_known") is False:
        notes.append("the file gives no tip heights; evenly spaced placeholder heights are used")
    return notes
