"""Our weight step against the public PyTorch port's, side by side in one
process; see --help.

Usage: python tools/analysis/compare_public_port.py --port-dir DIR
       [--crop 129x129] [--batch 2] [--rounds 5] [--warmup 1] [--out DIR]
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mmseg_autodeeplab.cli.compare_public_port import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
