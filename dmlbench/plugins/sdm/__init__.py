"""SDM, sensitivity-aware distance measurement: dropout views of the batch's
embeddings and a soft worst-case distance per pair, fed to unchanged pytorch-metric-learning
losses. Registered as the training plugin ``SDM``."""

from dmlbench.plugins.sdm.aggregation import SoftWorstCaseDistance, soft_worst_case
from dmlbench.plugins.sdm.plugin import SDM, dropout_views

__all__ = ["SDM", "SoftWorstCaseDistance", "dropout_views", "soft_worst_case"]
