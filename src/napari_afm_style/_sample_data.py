"""npe2 sample data: a ppafm simulation of water on Au(111) made by this project (with
its true geometry), and one experiment-like scan."""

from __future__ import annotations

from importlib.resources import files

from ._layers import atoms_layer_data, stack_layer_data
from .io import read_atoms, read_stack

SIM_STACK = "sample_water_sim.npz"
SIM_GEOMETRY = "sample_water_sim.xyz"
EXP_STACK = "sample_experiment_like.npz"


def data_path(name: str):
    """Path of a file shipped in ``napari_afm_style/data``."""
    return files("napari_afm_style") / "data" / name


def load_simulated_sample():
    """Simulated Δf stack (ppafm, CO tip) of bilayer ice on Au(111) + its true atoms."""
    stack = read_stack(data_path(SIM_STACK))
    atoms = read_atoms(data_path(SIM_GEOMETRY))
    adsorbate = atoms[[s in ("O", "H") for s in atoms.get_chemical_symbols()]]
    return [
        stack_layer_data(stack, name="Δf simulated water/Au(111)"),
        atoms_layer_data(adsorbate, name="true structure"),
    ]


def load_experiment_like_sample():
    """An experiment-like Δf stack of water on Au(111) (relative heights, no labels)."""
    stack = read_stack(data_path(EXP_STACK))
    return [stack_layer_data(stack, name="Δf experiment-like water/Au(111)")]
