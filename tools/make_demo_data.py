"""Generate a small seeded synthetic segmentation dataset.

Usage:
    python tools/make_demo_data.py --out data/demo_cityscapes
    python tools/make_demo_data.py --layout voc --num-train 32 --size 128x160
    python tools/make_demo_data.py --layout ade20k --seed 1 --force
"""
import sys
from pathlib import Path

# Run from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmseg_autodeeplab.datasets.demo_data import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
