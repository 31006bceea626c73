"""Network definitions and the shipped weights of napari-afm-style.

``predictor.py`` holds the structure-discovery U-Net. Shipped weights live beside it as
``predictor_<name>.pt`` with a model card ``predictor_<name>.md`` (command, seed, data,
metrics); :func:`napari_afm_style.predict.list_models` lists them.
"""
