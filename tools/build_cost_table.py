"""Cost lookup table of a retrain config for a budgeted search:
multiply-adds (counted) or latency (measured on a device).

Usage: python tools/build_cost_table.py CONFIG [--size HxW]
       [--kind macs|latency] [--device cpu|cuda] [--repeats N]
       [--warmup N] [--threads N] [--num-layers L] [--num-blocks B]
       [--verify N] --out PATH

See mmseg_autodeeplab/cli/build_cost_table.py and
docs/budgeted_search.md.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmseg_autodeeplab.cli.build_cost_table import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
