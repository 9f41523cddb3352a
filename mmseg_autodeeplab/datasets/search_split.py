"""Deterministic disjoint halves of a training set for the search."""
import copy

import numpy as np
from mmseg.registry import DATASETS


@DATASETS.register_module()
class SearchSplitDataset:
    """One of two DISJOINT halves (trainA / trainB) of a dataset.

    The split is a seeded permutation of the wrapped dataset's indices:
    trainA gets the first ``ceil(n / 2)`` of it (the weights), trainB the rest
    (α/β). The same ``seed`` always gives the same halves, independently of
    the training seed.

    Args:
        dataset (dict | Dataset): the full training set (e.g. an mmseg
            ``CityscapesDataset`` config).
        split (str): ``'A'`` or ``'B'``.
        seed (int): seed of the split permutation.
        lazy_init (bool): defer loading the annotation list.
    """

    def __init__(self, dataset, split='A', seed=0, lazy_init=False):
        if split not in ('A', 'B'):
            raise ValueError(
                f'SearchSplitDataset: split must be "A" or "B", got {split!r}')
        self.dataset = DATASETS.build(copy.deepcopy(dataset)) if isinstance(
            dataset, dict) else dataset
        self.split = split
        self.seed = seed
        self._metainfo = self.dataset.metainfo
        self._indices = None
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self):
        return copy.deepcopy(self._metainfo)

    @staticmethod
    def split_indices(length, seed):
        """Return ``(trainA, trainB)`` sorted index arrays for ``length``."""
        if length < 2:
            raise ValueError(
                f'SearchSplitDataset: the training set has {length} '
                'sample(s); the search needs at least 2 to split into '
                'disjoint trainA/trainB halves')
        perm = np.random.default_rng(seed).permutation(length)
        half = (length + 1) // 2
        return np.sort(perm[:half]), np.sort(perm[half:])

    def full_init(self):
        if self._indices is not None:
            return
        if hasattr(self.dataset, 'full_init'):
            self.dataset.full_init()
        a, b = self.split_indices(len(self.dataset), self.seed)
        self._indices = a if self.split == 'A' else b

    @property
    def indices(self):
        self.full_init()
        return self._indices

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, idx):
        return self.dataset[int(self.indices[idx])]

    def get_data_info(self, idx):
        return self.dataset.get_data_info(int(self.indices[idx]))
