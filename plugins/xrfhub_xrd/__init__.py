"""Diffraction (XRD) classifiers of source documents 003 (PaNOSC binned models and 1-D models)
and 001 (multi-task phase presence), as torch modules and seeded training recipes on arrays.

Modules: ``config`` (frozen dataclasses, no torch), ``data`` (checks, scaling, noisy copies),
``binned``/``spectra1d``/``multitask`` (the modules), ``models`` (build by name), ``training``
(the loops), ``recipes`` (``fit`` -> ``Fitted``), ``metrics`` (numpy scores). Nothing is imported
here, so ``metrics`` and ``config`` load without torch.
"""
