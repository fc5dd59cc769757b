"""The application layer: what runs boostnet for a user, on top of the library's core.

- :mod:`~boostnet.app.cli`: the ``boostnet`` command line (typer), thin commands over the rest;
- :mod:`~boostnet.app.experiment`: run folders (config, metrics, history, model, plots), written
  atomically;
- :mod:`~boostnet.app.compare`: ``boostnet compare`` (methods, seeds, folds; tidy rows, resume);
- :mod:`~boostnet.app.report`, :mod:`~boostnet.app.plots`: reports and figures;
- :mod:`~boostnet.app.bench`: the scoring benchmark behind ``boostnet bench``;
- :mod:`~boostnet.app.datasets`: named, synthetic and file data sets.

The core (``boostnet.*`` outside this package: datafits, penalties, activations, samplers, scoring,
refinement, slide, re-fit, the loop, the network, estimators, paths, model files, export) never
imports from here (``tests/test_imports.py``).
"""
