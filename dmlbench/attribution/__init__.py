"""A retrieval's similarity split over pairs of spatial positions of the trunk's last feature
maps (Stylianou, Souvenir, Pless, "Visualizing Deep Similarity Networks", WACV 2019); used by
``python -m dmlbench.explain`` and by report.html's explanations (docs/explain.md).

- :mod:`~dmlbench.attribution.decompose`: the decomposition (pure tensor functions, the math);
- :mod:`~dmlbench.attribution.forms`: the trunks, poolings and embedders it covers;
- :mod:`~dmlbench.attribution.pairs`: a query and its neighbours through trained models (float64);
- :mod:`~dmlbench.attribution.ranking`: one query's neighbours as the report ranks them;
- :mod:`~dmlbench.attribution.draw`: the PNG and its JSON;
- :mod:`~dmlbench.attribution.examples`: the report's explanations, from plain inputs.
"""
