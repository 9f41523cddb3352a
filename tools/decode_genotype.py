"""Decode a searched genotype and write a ready-to-train retraining config.

Usage: python tools/decode_genotype.py WORK_DIR|CHECKPOINT|GENOTYPE.json
       --out CONFIG.py [--dataset cityscapes|voc|ade20k]
       [--filter-multiplier F] [--genotype-out JSON] [--end-level J]
       [--max-iters N]

Then: mim train mmsegmentation CONFIG.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmseg_autodeeplab.cli.decode_genotype import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
