from .decode import (decode_cell, decode_genotype, decode_path, level_sizes,
                     max_level, normalize_betas, num_edges, valid_moves)
from .genotype import (CellGenotype, Genotype, GenotypeError, SearchSpace,
                       input_names)
from .primitives import OPS, PRIMITIVES, ZERO_OP, build_op, check_op_names

__all__ = [
    'PRIMITIVES', 'ZERO_OP', 'OPS', 'build_op', 'check_op_names',
    'CellGenotype', 'Genotype', 'GenotypeError', 'SearchSpace', 'input_names',
    'decode_cell', 'decode_path', 'decode_genotype', 'normalize_betas',
    'num_edges', 'max_level', 'level_sizes', 'valid_moves'
]
