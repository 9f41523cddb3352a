"""Import-time settings of :mod:`mmseg_autodeeplab.compat`."""
import os
import subprocess
import sys

import pytest
import torch

# Runs 300 distinct small convolutions (forward, backward and reorders: about
# 1,700 oneDNN primitives) twice and prints how many primitives the second
# pass had to create again: 0 once the cache holds them all.
_SCRIPT = r'''
import sys, torch
import torch.nn.functional as F
if sys.argv[1] == 'import':
    import mmseg_autodeeplab  # noqa: F401
def run():
    for c in range(4, 304):
        x = torch.ones(2, c, 8, 8, requires_grad=True)
        w = torch.ones(8, c, 3, 3, requires_grad=True)
        F.conv2d(x, w, padding=1).sum().backward()
run()
print('MARK', flush=True)
with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON_CREATION):
    run()
'''


def _second_pass_misses(mode):
    env = {k: v for k, v in os.environ.items()
           if k != 'ONEDNN_PRIMITIVE_CACHE_CAPACITY'}
    env['OMP_NUM_THREADS'] = '1'
    out = subprocess.run([sys.executable, '-c', _SCRIPT, mode], env=env,
                         capture_output=True, text=True, check=True).stdout
    return out.split('MARK', 1)[1].count('create:cache_miss')


@pytest.mark.slow
@pytest.mark.skipif(not torch.backends.mkldnn.is_available(),
                    reason='needs oneDNN (CPU convolutions)')
def test_import_enlarges_onednn_primitive_cache():
    # without the package, the default 1024-entry cache thrashes
    assert _second_pass_misses('plain') > 500
    # importing it first requests a cache large enough for all of them
    assert _second_pass_misses('import') == 0
