"""Training: the Trainer (``compile``, ``fit``, ``evaluate``, ``predict``) and its data adapters."""

from .data_adapters import PyDataset, array_batches, batch_source
from .trainer import Trainer

__all__ = ["PyDataset", "Trainer", "array_batches", "batch_source"]
