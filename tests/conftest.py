import os

import numpy as np
import pytest

# Keep numerical libraries to one thread per test process: CI has 2 cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def small_stack():
    """A small, physically plausible stack (Hz, Å) built from analytic blobs."""
    from napari_afm_style import AFMStack

    ny, nx, nh = 24, 32, 5
    y, x = np.mgrid[0:ny, 0:nx] * 0.2
    data = np.stack([-2.0 * np.exp(-((x - 3) ** 2 + (y - 2.4) ** 2) / (1 + 0.2 * i)) - 0.5
                     for i in range(nh)]).astype(np.float32)
    return AFMStack(data, heights_A=15.0 - 0.1 * np.arange(nh), pixel_size_A=0.2,
                    origin_A=(1.5, -2.0), f0_Hz=30300.0, k_N_per_m=1800.0, amplitude_A=0.8,
                    metadata={"source": "test"})
