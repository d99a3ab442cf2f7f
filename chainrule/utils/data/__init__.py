"""Loading data for training (``chainrule.utils.data``), with PyTorch's names and semantics.

>>> import chainrule as cr
>>> from chainrule.utils.data import DataLoader, TensorDataset
>>> ds = TensorDataset(cr.randn(100, 3), cr.randint(0, 2, (100,)))
>>> for x, y in DataLoader(ds, batch_size=32, shuffle=True):
...     pass
>>> x.shape, y.shape
(chainrule.Size([4, 3]), chainrule.Size([4]))
"""

from chainrule.utils.data._worker import WorkerInfo, get_worker_info
from chainrule.utils.data.collate import default_collate, default_convert
from chainrule.utils.data.dataloader import DataLoader
from chainrule.utils.data.dataset import (
    ChainDataset,
    ConcatDataset,
    Dataset,
    IterableDataset,
    StackDataset,
    Subset,
    TensorDataset,
    random_split,
)
from chainrule.utils.data.distributed import DistributedSampler
from chainrule.utils.data.sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)

__all__ = [
    "BatchSampler",
    "ChainDataset",
    "ConcatDataset",
    "DataLoader",
    "Dataset",
    "DistributedSampler",
    "IterableDataset",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "StackDataset",
    "Subset",
    "SubsetRandomSampler",
    "TensorDataset",
    "WeightedRandomSampler",
    "WorkerInfo",
    "default_collate",
    "default_convert",
    "get_worker_info",
    "random_split",
]
