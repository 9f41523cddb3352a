"""mmseg's get_flops.py with mmengine 0.10's API (multiply-adds, params).

Usage: python tools/get_flops.py CONFIG [--shape H W] [--cfg-options ...]
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmseg_autodeeplab.cli.get_flops import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
