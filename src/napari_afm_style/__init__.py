"""napari-afm-style: structure discovery for CO-tip NC-AFM with sim↔exp style translation."""

from .stack import AFMStack, StackError

__version__ = "0.1.0"
__all__ = ["AFMStack", "StackError", "__version__"]
