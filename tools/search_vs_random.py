"""Searched vs random genotypes under the same retraining budget.

Usage:
    python tools/search_vs_random.py                      # after `make demo`
    python tools/search_vs_random.py --searched WORK_DIR --num-random 8 \
        --seeds 0 1 2 --match-macs --out work_dirs/search_vs_random

A killed run continues where it stopped when started again with the same
arguments. See mmseg_autodeeplab/cli/search_vs_random.py.
"""
import sys
from pathlib import Path

# Run from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmseg_autodeeplab.cli.search_vs_random import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
