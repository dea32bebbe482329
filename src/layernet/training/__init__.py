"""Training: the Trainer (``compile``, ``fit``, ``evaluate``, ``predict``) and its data adapters."""

from .data_adapters import PyDataset, batch_source
from .trainer import Trainer

__all__ = ["PyDataset", "Trainer", "batch_source"]
