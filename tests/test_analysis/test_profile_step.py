"""tools/analysis/profile_step.py: the op kinds, and a profile of one tiny
weight step (the benchmark's, hence the search's)."""
import pytest
from profile_step import kind_of, main

pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.mark.parametrize('op,kind', [
    ('aten::convolution_backward', 'conv backward'),
    ('aten::mkldnn_convolution', 'conv forward'),
    ('aten::native_batch_norm_backward', 'BN backward'),
    ('aten::cat', 'copies, views, allocations'),
    ('aten::relu_', 'ReLU'),
    ('aten::max_pool2d', 'pooling'),
    ('aten::mul', 'elementwise (α/β weighting, sums)'),
    ('Optimizer.step#SGD.step', 'optimizer'),
    ('aten::upsample_bilinear2d', 'resize'),
    ('aten::something_new', 'other'),
])
def test_ops_are_grouped_by_kind(op, kind):
    assert kind_of(op) == kind


@pytest.mark.slow
def test_profile_of_a_tiny_weight_step(capsys):
    assert main(['fused', '--crop', '33x33', '--filter-multiplier', '2',
                 '--num-layers', '3']) == 0
    out = capsys.readouterr().out
    assert 'fused weight step, crop 33x33, batch 2' in out
    for kind in ('conv forward', 'conv backward', 'optimizer',
                 'outside any op (Python, autograd)'):
        assert kind in out
