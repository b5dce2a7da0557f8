"""Explanations of retrievals: a query-neighbour similarity decomposed over pairs of spatial
positions of the trunk's last feature maps (Stylianou, Souvenir, Pless, "Visualizing Deep
Similarity Networks", WACV 2019).

- :mod:`~dmlbench.explain.decompose`: the decomposition (pure tensor functions, the math);
- :mod:`~dmlbench.explain.forms`: the trunks, poolings and embedders it covers;
- :mod:`~dmlbench.explain.pairs`: a query and its neighbours through trained models (float64);
- :mod:`~dmlbench.explain.draw`: the PNG and its JSON;
- :mod:`~dmlbench.explain.command`: ``python -m dmlbench.explain``.
"""
