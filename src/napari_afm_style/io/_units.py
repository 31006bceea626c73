"""Unit conversions shared by the instrument-format readers (lengths to Å, frequencies to Hz)."""

from __future__ import annotations

__all__ = [
    "LENGTH_TO_A",
    "FREQUENCY_TO_HZ",
    "length_factor_A",
    "frequency_factor_Hz",
]

#: Multiply a length in the key's unit by this to get Å.
LENGTH_TO_A = {
    "m": 1e10,
    "mm": 1e7,
    "um": 1e4,
    "µm": 1e4,
    "μm": 1e4,
    "micron": 1e4,
    "microns": 1e4,
    "nm": 10.0,
    "a": 1.0,
    "å": 1.0,
    "Å": 1.0,
    "angstrom": 1.0,
    "angstroms": 1.0,
    "pm": 1e-2,
}

#: Multiply a frequency in the key's unit by this to get Hz.
FREQUENCY_TO_HZ = {"hz": 1.0, "mhz": 1e-3, "khz": 1e3}


def length_factor_A(unit: str | None) -> float | None:
    """Factor from ``unit`` to Å, or None when ``unit`` is not a length unit we know."""
    if unit is None:
        return None
    u = _unescape(str(unit).strip())
    if u in LENGTH_TO_A:
        return LENGTH_TO_A[u]
    return LENGTH_TO_A.get(u.lower())


def _unescape(unit: str) -> str:
    """Decode the ``\\uXXXX`` escapes Fiji writes for non-ASCII units (``\\u00C5`` is Å).

    >>> _unescape("\\u00B5m")
    'µm'
    """
    import re

    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), unit)


def frequency_factor_Hz(unit: str | None) -> float | None:
    """Factor from ``unit`` to Hz (``Hz``, ``mHz``, ``kHz``), or None when it is not one.

    Case matters between mHz and MHz; MHz is not a plausible Δf unit, so it is refused
    rather than guessed.
    """
    if unit is None:
        return None
    u = str(unit).strip()
    if u == "MHz":
        return None
    return FREQUENCY_TO_HZ.get(u.lower())

