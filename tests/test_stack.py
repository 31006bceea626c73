import numpy as np
import pytest

from napari_afm_style import AFMStack, StackError


def test_fields_and_geometry(small_stack):
    s = small_stack
    assert s.data.dtype == np.float32 and s.shape == (5, 24, 32)
    assert s.extent_A == pytest.approx((6.4, 4.8))
    assert s.x_A[0] == pytest.approx(1.5) and s.x_A[-1] == pytest.approx(1.5 + 31 * 0.2)
    assert s.height_step_A == pytest.approx(0.1)
    scale, translate = s.layer_scale(), s.layer_translate()
    # world z of slice i reproduces heights_A[i]
    assert np.allclose(translate[0] + scale[0] * np.arange(5), s.heights_A)
    assert translate[1:] == (-2.0, 1.5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(data=np.zeros((2, 3, 3, 3))), "shape"),
        (dict(heights_A=[1.0, 2.0, 3.0, 4.0, 5.0]), "decrease"),
        (dict(heights_A=[1.0, 0.5]), "heights"),
        (dict(pixel_size_A=0.0), "pixel_size_A"),
        (dict(f0_Hz=np.nan), "f0_Hz"),
        (dict(origin_A=(1.0,)), "origin_A"),
        (dict(metadata={"x": object()}), "JSON"),
        # beyond float32's range: refused as implausible, not turned into inf by the cast
        (dict(data=np.full((5, 4, 4), 1e300)), "not plausible"),
    ],
)
def test_invalid_stacks_are_refused(small_stack, kwargs, message):
    fields = dict(data=small_stack.data, heights_A=small_stack.heights_A, pixel_size_A=0.2,
                  origin_A=(0, 0))
    fields.update(kwargs)
    with pytest.raises(StackError, match=message):
        AFMStack(**fields)


def test_history_and_offset_do_not_touch_original(small_stack):
    moved = small_stack.with_height_offset(-3.0)
    assert np.allclose(moved.heights_A, small_stack.heights_A - 3.0)
    assert moved.metadata["history"][-1] == {"step": "height_offset", "offset_A": -3.0}
    assert "history" not in small_stack.metadata
    assert moved.data is not small_stack.data


def test_summary_mentions_units(small_stack):
    text = small_stack.summary()
    for unit in ("Å", "Hz", "N/m"):
        assert unit in text
