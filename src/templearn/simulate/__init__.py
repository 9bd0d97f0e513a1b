"""Tilt-series simulation: from a packed sample and an acquisition to images.

Backends share `templearn.acquisition.Acquisition`, the projection geometry of
`templearn.projector` and the output format of `templearn.tiltseries`. `fast` is a
projection-approximation simulator vectorised in JAX (`fast.py`), with the optics in
`optics.py`, the specimen potential in `potential.py` and dose and detector effects in
`exposure.py`.
"""
