"""How well a cost table predicts the networks it is for.

``python tools/analysis/verify_cost_table.py TABLE [--num N] [--seed S]
[--out JSON]``: N random genotypes' static networks (the table's config,
input size and L/B), counted with mmengine's counter (a multiply-adds
table: the table must match exactly) or timed on the table's device with
its threads and repeats, all networks in the same interleaved rounds as the
table's parts (a latency table: about additive, so it ranks rather than
predicts); prints Spearman(predicted, actual), the largest difference and
both ranges.
"""
import os.path as osp
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mmseg_autodeeplab.analysis import (OneLineParser,  # noqa: E402
                                        count_macs, int_at_least,
                                        load_config)
from mmseg_autodeeplab.arch_cost import (  # noqa: E402
    LATENCY_DEFAULTS, CostTable, format_cost)
from mmseg_autodeeplab.utils import (atomic_write_json,  # noqa: E402
                                     exit_with_error)


def count_network(layout, genotype):
    """mmengine's multiply-adds of ``genotype``'s whole static network."""
    import torch
    return count_macs(layout.network(genotype),
                      torch.zeros(1, 3, *layout.size))


def verify(layout, table, num, seed=1):
    """Predicted vs counted (MACs) or measured (latency) cost of ``num``
    random genotypes: ``seed``, ``predicted``, ``counted`` or ``measured``,
    ``spearman`` and ``max_abs_diff`` (MACs) or ``max_rel_diff``
    (``|predicted - measured| / measured``)."""
    import torch
    from scipy.stats import spearmanr

    from mmseg_autodeeplab.cost_tables import time_modules
    from mmseg_autodeeplab.search_space.sampling import sample_genotype
    from mmseg_autodeeplab.utils.devices import check_device
    rng = np.random.default_rng(seed)
    genotypes = [sample_genotype(rng, layout.space) for _ in range(num)]
    predicted = [table.predicted(g) for g in genotypes]
    if table.kind == 'macs':
        predicted = [int(round(p)) for p in predicted]
        actual = [count_network(layout, g) for g in genotypes]
        name, diff = 'counted', dict(max_abs_diff=max(
            abs(p - c) for p, c in zip(predicted, actual)))
    else:
        dev = check_device(table.data.get('device_type', 'cpu'))
        x = torch.randn(1, 3, *layout.size,
                        generator=torch.Generator().manual_seed(0))
        actual = time_modules(
            [(layout.network(g).to(dev), (x.to(dev), )) for g in genotypes],
            *(table.data.get(k, LATENCY_DEFAULTS[k])
              for k in ('repeats', 'warmup')), dev)
        name, diff = 'measured', dict(max_rel_diff=max(
            abs(p - m) / m for p, m in zip(predicted, actual)))
    rho = float(spearmanr(predicted, actual).correlation) if num > 1 \
        else None
    return dict({'seed': seed, 'predicted': predicted, name: actual},
                spearman=rho, **diff)


def main(argv=None):
    p = OneLineParser(prog='verify_cost_table',
                      description=__doc__.split('\n\n')[0])
    p.add_argument('table', help='a table of tools/build_cost_table.py')
    p.add_argument('--num', type=int_at_least(2), default=20)
    p.add_argument('--seed', type=int, default=1)
    p.add_argument('--out', help='also write the result as JSON')
    args = p.parse_args(argv)
    import torch

    from mmseg_autodeeplab.cost_tables import Layout
    from mmseg_autodeeplab.utils.configs import resolve_config
    try:
        table = CostTable.load(args.table)  # its errors name the file
    except ValueError as e:
        exit_with_error(e)
    data = table.data
    try:
        layout = Layout(load_config(resolve_config(data['config'])),
                        tuple(data['input_size']), data['num_layers'],
                        data['num_blocks'])
    except (ValueError, FileNotFoundError, KeyError) as e:
        exit_with_error(f'{args.table}: {e}')
    if data.get('threads'):
        torch.set_num_threads(data['threads'])
    v = verify(layout, table, args.num, args.seed)
    name = 'measured' if table.kind == 'latency' else 'counted'
    diff = (f'|predicted - measured| / measured = {v["max_rel_diff"]:.3f}'
            if table.kind == 'latency' else
            f'|predicted - counted| = {v["max_abs_diff"]} MACs')
    span = {k: f'{format_cost(min(v[k]), table.kind)} to '
            f'{format_cost(max(v[k]), table.kind)}' for k in ('predicted',
                                                              name)}
    print(f'{osp.basename(args.table)}: {args.num} random genotypes, '
          f'Spearman(predicted, {name}) = {v["spearman"]:.3f}; predicted '
          f'{span["predicted"]}, {name} {span[name]}; largest {diff}')
    if args.out:
        atomic_write_json(args.out, v)
    return 0


if __name__ == '__main__':
    sys.exit(main())
