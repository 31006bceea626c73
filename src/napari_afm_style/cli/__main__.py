"""``python -m napari_afm_style.cli`` runs ``afm-style`` (as ``cli.py`` did before it became a package)."""

import sys

from . import main

sys.exit(main())
