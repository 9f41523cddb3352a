"""``tools/build_cost_table.py``: write the cost lookup table of a retrain
config for a budgeted search (``train_cfg.arch_cost``); the tables:
:mod:`mmseg_autodeeplab.arch_cost`, how they are built:
:mod:`mmseg_autodeeplab.cost_tables`."""
import argparse

from ..analysis import OneLineParser, hw_type, int_at_least
from ..arch_cost import LATENCY_DEFAULTS, format_cost
from ..cost_tables import make_table
from ..utils import atomic_write_json, exit_with_error
from ..utils.configs import resolve_config
from ..utils.work_dir_lock import table_lock


def parse_args(argv=None):
    parser = OneLineParser(description=__doc__.split('\n\n')[0],
                           formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('config', help='retrain config (AutoDeepLabNet)')
    parser.add_argument('--size', type=hw_type(8), default=(1024, 2048),
                        help='input HxW of the retrained network '
                        '(default 1024x2048, as tools/analysis/benchmark.py)')
    parser.add_argument('--kind', choices=('macs', 'latency'),
                        default='macs', help='multiply-adds (counted) or '
                        'latency (measured on --device); default macs')
    # the latency flags default to None: with --kind macs, one that differs
    # from its latency default is refused (it would change nothing)
    parser.add_argument('--device',
                        help="latency: 'cpu' (default) or 'cuda[:i]'")
    parser.add_argument('--repeats', type=int_at_least(1),
                        help='latency: timed runs per module, median kept '
                        f'(default {LATENCY_DEFAULTS["repeats"]})')
    parser.add_argument('--warmup', type=int_at_least(0),
                        help='latency: untimed runs before (default '
                        f'{LATENCY_DEFAULTS["warmup"]})')
    parser.add_argument('--threads', type=int_at_least(1),
                        help="latency: torch's CPU threads while timing "
                        '(default: torch\'s current count; recorded)')
    parser.add_argument('--num-layers', type=int_at_least(1),
                        help="L of the search (default: the config's "
                        'genotype)')
    parser.add_argument('--num-blocks', type=int_at_least(1),
                        help="B of the search (default: the config's "
                        'genotype)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', required=True, help='output JSON')
    args = parser.parse_args(argv)
    args.latency = {k: getattr(args, k) for k in LATENCY_DEFAULTS
                    if getattr(args, k) is not None}
    if args.kind == 'macs':
        wrong = [k for k, v in args.latency.items()
                 if v != LATENCY_DEFAULTS[k]]
        if wrong:
            parser.error(f'--{wrong[0]}: only for --kind latency')
        args.latency = {}
    return args


def main(argv=None):
    args = parse_args(argv)
    owner = table_lock(args.out)  # held until the table is written
    try:
        owner.acquire()
        data = make_table(resolve_config(args.config), args.size,
                          args.num_layers, args.num_blocks, args.kind,
                          seed=args.seed,
                          log=lambda msg: print(msg, flush=True),
                          name=args.config, **args.latency)
    except (ValueError, FileNotFoundError) as e:  # WorkDirBusy too
        owner.release()
        exit_with_error(' '.join(str(e).split()))
    with owner:
        atomic_write_json(args.out, data)
    kind = args.kind
    where = (f'{data["num_layers"]} layers, {data["num_blocks"]} blocks, '
             f'{args.size[0]}x{args.size[1]}')
    if kind == 'latency':
        where += (f'; {data["device"]}, {data["threads"]} threads, '
                  f'{data["timed_modules"]} modules timed')
    print(f'{kind} cost table ({where}) written to {args.out}; stem '
          f'{format_cost(data["stem"], kind)}')
    return 0
