"""``tools/build_cost_table.py``: write the cost lookup table of a retrain
config for a budgeted search (``train_cfg.arch_cost``); the tables and how
they are built: :mod:`mmseg_autodeeplab.cost_tables`."""
import argparse

from ..analysis import OneLineParser, hw_type, int_at_least
from ..cost_tables import (DEFAULT_REPEATS, DEFAULT_WARMUP, check_device,
                           make_table, write_table)
from ..utils import exit_with_error


def parse_args(argv=None):
    parser = OneLineParser(description=__doc__.split('\n\n')[0],
                           formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('config', help='retrain config (AutoDeepLabNet)')
    parser.add_argument('--size', type=hw_type(8), default=(1024, 2048),
                        help='input HxW of the retrained network '
                        '(default 1024x2048, as tools/benchmark.py)')
    parser.add_argument('--kind', choices=('macs', 'latency'),
                        default='macs', help='multiply-adds (counted) or '
                        'latency (measured on --device); default macs')
    parser.add_argument('--device', default='cpu',
                        help="latency: 'cpu' (default) or 'cuda[:i]'")
    parser.add_argument('--repeats', type=int_at_least(1),
                        default=DEFAULT_REPEATS,
                        help='latency: timed runs per module, median kept '
                        f'(default {DEFAULT_REPEATS})')
    parser.add_argument('--warmup', type=int_at_least(0),
                        default=DEFAULT_WARMUP,
                        help='latency: untimed runs before (default '
                        f'{DEFAULT_WARMUP})')
    parser.add_argument('--threads', type=int_at_least(1),
                        help="latency: torch's CPU threads while timing "
                        '(default: torch\'s current count; recorded)')
    parser.add_argument('--num-layers', type=int_at_least(1),
                        help="L of the search (default: the config's "
                        'genotype)')
    parser.add_argument('--num-blocks', type=int_at_least(1),
                        help="B of the search (default: the config's "
                        'genotype)')
    parser.add_argument('--verify', type=int_at_least(0), default=0,
                        metavar='N', help='count (macs) or time (latency) N '
                        'random networks and record prediction vs them')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', required=True, help='output JSON')
    args = parser.parse_args(argv)
    if args.kind == 'macs':
        given = [k for k, v, d in (('--device', args.device, 'cpu'),
                                   ('--repeats', args.repeats,
                                    DEFAULT_REPEATS),
                                   ('--warmup', args.warmup, DEFAULT_WARMUP),
                                   ('--threads', args.threads, None))
                 if v != d]
        if given:
            parser.error(f'{given[0]}: only for --kind latency')
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        if args.kind == 'latency':
            check_device(args.device)
        data = make_table(args.config, args.size, args.num_layers,
                          args.num_blocks, args.kind, args.device,
                          args.repeats, args.warmup, args.threads, args.seed,
                          args.verify,
                          log=lambda msg: print(msg, flush=True))
    except (ValueError, FileNotFoundError) as e:
        exit_with_error(' '.join(str(e).split()))
    write_table(args.out, data)
    size = f'{args.size[0]}x{args.size[1]}'
    where = (f'{data["num_layers"]} layers, {data["num_blocks"]} blocks, '
             f'{size}')
    v = data.get('verification')
    if args.kind == 'latency':
        print(f'latency cost table ({where}; {data["device"]}, '
              f'{data["threads"]} threads, {data["timed_modules"]} modules '
              f'timed) written to {args.out}; stem '
              f'{data["stem"] * 1e3:.3f} ms')
        if v:
            p, m = v['predicted'], v['measured']
            print(f'verify: {args.verify} random genotypes, '
                  f'Spearman(predicted, measured) = {v["spearman"]}; '
                  f'predicted {min(p) * 1e3:.3f}-{max(p) * 1e3:.3f} ms, '
                  f'measured {min(m) * 1e3:.3f}-{max(m) * 1e3:.3f} ms, '
                  'largest |predicted - measured| / measured = '
                  f'{v["max_rel_diff"]:.3f}')
        return 0
    print(f'cost table ({where}) written to {args.out}; stem '
          f'{data["stem"] / 1e9:.3f} GMACs')
    if v:
        print(f'verify: {args.verify} random genotypes, Spearman(predicted, '
              f'counted) = {v["spearman"]}, largest |predicted - counted| '
              f'= {v["max_abs_diff"]} MACs (counted '
              f'{min(v["counted"]) / 1e9:.3f}-{max(v["counted"]) / 1e9:.3f} '
              'GMACs)')
    return 0
