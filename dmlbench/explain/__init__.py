"""``python -m dmlbench.explain`` (:mod:`~dmlbench.explain.command`): why a trained experiment
retrieves what it retrieves; the decomposition itself is :mod:`dmlbench.attribution`."""
