"""mmseg-autodeeplab: Auto-DeepLab search and retraining for MMSegmentation.

Importing the package applies the environment fixes (:mod:`.compat`) and
registers every module with mmseg's registries.
"""
from .compat import apply_compat

apply_compat()

from . import datasets, engine, models  # noqa: E402,F401
from .search_space import (PRIMITIVES, CellGenotype, Genotype,  # noqa: E402
                           GenotypeError, SearchSpace, decode_cell,
                           decode_genotype, decode_path, normalize_betas)
from .version import __version__  # noqa: E402,F401

__all__ = [
    'PRIMITIVES', 'CellGenotype', 'Genotype', 'GenotypeError', 'SearchSpace',
    'decode_cell', 'decode_path', 'decode_genotype', 'normalize_betas',
    '__version__'
]
