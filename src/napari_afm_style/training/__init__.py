"""The training floor: data sets, training loops, evaluation and the experiment.

Nothing here is needed to run the shipped models (``predict``, ``translate`` and the
GUI never import this package); it makes and judges them.
"""
