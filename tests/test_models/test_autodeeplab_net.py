"""The static Auto-DeepLab network built from a genotype."""
import json
import os.path as osp
import random
from types import SimpleNamespace

import pytest
import torch

import mmseg_autodeeplab  # noqa: F401
from mmseg_autodeeplab.engine.drop_path_hook import DropPathScheduleHook
from mmseg_autodeeplab.models.backbones.autodeeplab_net import (
    AutoDeepLabNet, drop_path, load_genotype)
from mmseg_autodeeplab.models.decode_heads import \
    autodeeplab_head  # noqa: F401  (registers the head for the configs)
from mmseg_autodeeplab.search_space import (PRIMITIVES, ZERO_OP,
                                            CellGenotype, Genotype,
                                            GenotypeError, SearchSpace)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAPER_JSON = osp.join(REPO, 'configs', 'genotypes', 'autodeeplab_paper.json')


def _ceil_half(n):
    return (n + 1) // 2


def _level_size(size, level):
    h = _ceil_half(_ceil_half(size))  # stem: /4
    for _ in range(level):
        h = _ceil_half(h)
    return h


def _forward_backward(net, size, batch=2):
    net.train()
    x = torch.rand(batch, 3, size, size)
    outs = net(x)
    sum(o.mean() for o in outs).backward()
    missing = [n for n, p in net.named_parameters()
               if p.requires_grad and p.grad is None]
    assert not missing, f'no gradient for {missing[:5]}'
    return outs


def test_paper_genotype_file_is_the_published_architecture(paper_cell,
                                                           paper_path):
    g = Genotype.load(PAPER_JSON)
    assert g.path == paper_path
    assert g.cell.blocks == paper_cell
    assert g.path_strides == (4, 4, 4, 8, 16, 8, 16, 16, 32, 32, 16, 8)
    with open(PAPER_JSON) as f:  # written by Genotype.save: same format
        assert f.read() == g.to_json()


@pytest.mark.parametrize('size,f', [(97, 4), (65, 2), (64, 2)])
def test_paper_net_forward_backward_small_f(size, f):
    torch.manual_seed(0)
    net = AutoDeepLabNet(PAPER_JSON, filter_multiplier=f)
    assert net.out_channels == [5 * f, 10 * f]
    assert net.out_strides == [4, 8]
    low, last = _forward_backward(net, size)
    h0, h1 = _level_size(size, 0), _level_size(size, 1)
    assert low.shape == (2, 5 * f, h0, h0)
    assert last.shape == (2, 10 * f, h1, h1)
    assert (last >= 0).all()  # TF: ReLU after the last cell


def test_tf_sizes_for_769():
    # TF: 769 -> 385 -> 193 (/4) -> 97 (/8) -> 49 -> 25
    assert [_level_size(769, j) for j in range(4)] == [193, 97, 49, 25]
    from mmseg_autodeeplab.models.backbones.autodeeplab_supernet import \
        level_sizes
    assert level_sizes(193, 193, 4)[1:] == [(97, 97), (49, 49), (25, 25)]
    # upsampling (d - 1) * 2 + 1 lands on the canonical size for odd sizes
    assert all((d - 1) * 2 + 1 == up
               for up, d in [(193, 97), (97, 49), (49, 25)])


def _random_genotype(rng, num_layers, num_blocks, path=None):
    ops = [p for p in PRIMITIVES if p != ZERO_OP]
    blocks = []
    for b in range(num_blocks):
        inputs = rng.sample(range(b + 2), 2)
        blocks.append(tuple((i, rng.choice(ops)) for i in inputs))
    if path is None:
        path = [rng.choice((0, 1))]
        for _ in range(num_layers - 1):
            p = path[-1]
            path.append(rng.choice([q for q in (p - 1, p, p + 1)
                                    if 0 <= q <= 3]))
    return Genotype(CellGenotype(tuple(blocks)), tuple(path),
                    SearchSpace(num_layers=len(path), num_blocks=num_blocks))


# Hand-picked paths so that going up, going down and every end level are
# covered whatever the random generator draws.
_PATHS = [
    (1, 2, 3, 3, 2, 1, 0, 0),  # Cell_2 at /32, ends at /4
    (0, 1, 2, 3, 2, 3, 2, 3),  # zig-zag, ends at /32
    (1, 1, 0, 1, 2, 2),  # Cell_2 at /4 after going down, ends at /16
    (0, 0, 1),  # Cell_2 is the last cell
]


@pytest.mark.parametrize('seed', range(8))
def test_random_genotypes_build_and_run(seed):
    rng = random.Random(seed)
    path = _PATHS[seed] if seed < len(_PATHS) else None
    genotype = _random_genotype(rng, num_layers=rng.randint(3, 8),
                                num_blocks=rng.randint(1, 5), path=path)
    torch.manual_seed(seed)
    net = AutoDeepLabNet(genotype.to_dict(), filter_multiplier=2)
    size = rng.choice((33, 40, 49))
    outs = _forward_backward(net, size)
    blocks = len(genotype.cell.blocks)
    for out, index, channels in zip(outs, net.out_indices,
                                    net.out_channels):
        level = genotype.path[index]
        assert channels == blocks * 2 * 2**level
        assert out.shape[1] == channels
        assert out.shape[2] == out.shape[3] == _level_size(size, level)


def test_low_level_channels_follow_the_path():
    g = _random_genotype(random.Random(0), 0, 5, path=(1, 2, 3, 2, 1))
    net = AutoDeepLabNet(g, filter_multiplier=3)
    assert net.out_channels == [5 * 3 * 8, 5 * 3 * 2]  # Cell_2 at /32
    assert net.out_strides == [32, 8]


def test_genotype_forms_and_path_resolution(tmp_path, monkeypatch):
    g = Genotype.load(PAPER_JSON)
    with open(PAPER_JSON) as f:
        data = json.load(f)
    assert load_genotype(g) is g
    assert load_genotype(data) == g
    from mmengine.config import ConfigDict
    assert load_genotype(ConfigDict(data)) == g
    # a config's relative path works from any CWD (falls back to the repo)
    monkeypatch.chdir(tmp_path)
    assert load_genotype('configs/genotypes/autodeeplab_paper.json') == g
    # ... and a file in the CWD wins
    local = tmp_path / 'configs' / 'genotypes'
    local.mkdir(parents=True)
    other = Genotype(g.cell, (1, ) * 12)
    other.save(str(local / 'autodeeplab_paper.json'))
    assert load_genotype('configs/genotypes/autodeeplab_paper.json') == other


def test_missing_genotype_is_an_error_naming_the_file(tmp_path):
    with pytest.raises(GenotypeError, match='nope.json: genotype file not '
                       'found'):
        AutoDeepLabNet(str(tmp_path / 'nope.json'))
    with pytest.raises(GenotypeError, match='no/such.json.*not found.*'
                       'looked in'):
        AutoDeepLabNet('no/such.json')
    with pytest.raises(GenotypeError, match='expected a path'):
        AutoDeepLabNet(None)


def _paper_dict():
    with open(PAPER_JSON) as f:
        return json.load(f)


def _set(data, path, value):
    obj = data
    for key in path[:-1]:
        obj = obj[key]
    obj[path[-1]] = value
    return data


_INVALID = {
    'invalid_json': (None, 'invalid JSON'),
    'unknown_op': (lambda d: _set(d, ['cell', 1, 'inputs', 0, 'op'],
                                  'conv_7x7'),
                   r"cell\[1\].inputs\[0\].op: unknown operator 'conv_7x7'"),
    'zero_op': (lambda d: _set(d, ['cell', 0, 'inputs', 1, 'op'], 'none'),
                r"cell\[0\].inputs\[1\].op: the zero operator"),
    'block_count': (lambda d: _set(d, ['cell'], d['cell'][:4]),
                    'cell: expected 5 blocks'),
    'future_block': (lambda d: _set(d, ['cell', 1, 'inputs', 0, 'input'],
                                    'H3'),
                     r"cell\[1\].inputs\[0\].input: 'H3' is not available "
                     'to block H2'),
    'self_input': (lambda d: _set(d, ['cell', 0, 'inputs', 0, 'input'],
                                  'H1'),
                   'not available to block H1'),
    'path_length': (lambda d: _set(d, ['path'], d['path'][:11]),
                    'path: expected 12 levels'),
    'path_step': (lambda d: _set(d, ['path', 3], 2),
                  r'path\[3\]: moves from level 0 to 2'),
    'first_level': (lambda d: _set(d, ['path'], [2, 1] + [0] * 10),
                    r'path\[0\]: the first layer must be at level 0 or 1'),
    'level_high': (lambda d: _set(d, ['path', 9], 4),
                   r'path\[9\]: level 4 outside 0-3'),
    'level_negative': (lambda d: _set(d, ['path', 1], -1),
                       r'path\[1\]: level -1 outside 0-3'),
}


@pytest.mark.parametrize('case', sorted(_INVALID))
def test_invalid_genotype_files_are_rejected(case, tmp_path):
    mutate, message = _INVALID[case]
    path = tmp_path / f'{case}.json'
    if mutate is None:
        path.write_text('{"cell": [')
    else:
        path.write_text(json.dumps(mutate(_paper_dict())))
    with pytest.raises(GenotypeError, match=message) as info:
        AutoDeepLabNet(str(path), filter_multiplier=2)
    msg = str(info.value)
    assert msg.startswith(str(path)) and '\n' not in msg
    if mutate is not None:  # the same check inline names the config
        with pytest.raises(GenotypeError, match='inline genotype: .*'
                           + message):
            AutoDeepLabNet(mutate(_paper_dict()), filter_multiplier=2)


def test_constructor_checks():
    with pytest.raises(GenotypeError, match='num_blocks=4'):
        AutoDeepLabNet(PAPER_JSON, num_blocks=4)
    AutoDeepLabNet(PAPER_JSON, filter_multiplier=1, num_blocks=5)
    with pytest.raises(ValueError, match='out_indices'):
        AutoDeepLabNet(PAPER_JSON, filter_multiplier=1, out_indices=(12, ))
    with pytest.raises(ValueError, match='drop_path_prob'):
        AutoDeepLabNet(PAPER_JSON, filter_multiplier=1, drop_path_prob=1.0)


def test_drop_path_function():
    torch.manual_seed(0)
    x = torch.ones(4000, 2, 1, 1)
    y = drop_path(x, 0.25, training=True)
    kept = (y[:, 0, 0, 0] > 0).float().mean().item()
    assert abs(kept - 0.75) < 0.03
    assert torch.allclose(y[y > 0], torch.full_like(y[y > 0], 1 / 0.75))
    assert (y[:, 0] == y[:, 1]).all()  # one decision per sample
    assert drop_path(x, 0.25, training=False) is x


def test_scheduled_drop_path_follows_depth_and_progress():
    net = AutoDeepLabNet(PAPER_JSON, filter_multiplier=1,
                         drop_path_prob=0.4)
    net.train()
    assert net.cell_drop_prob(11) == pytest.approx(0.4)  # no progress info
    net.set_drop_path_progress(0.5)
    assert net.cell_drop_prob(11) == pytest.approx(0.2)
    assert net.cell_drop_prob(2) == pytest.approx(0.4 * 3 / 12 * 0.5)
    net.eval()
    assert net.cell_drop_prob(11) == 0.
    assert AutoDeepLabNet(PAPER_JSON, filter_multiplier=1).train() \
        .cell_drop_prob(11) == 0.  # off by default


def test_drop_path_changes_training_output_only():
    torch.manual_seed(0)
    ref = AutoDeepLabNet(PAPER_JSON, filter_multiplier=1)
    net = AutoDeepLabNet(PAPER_JSON, filter_multiplier=1,
                         drop_path_prob=0.5)
    net.load_state_dict(ref.state_dict())
    x = torch.rand(4, 3, 17, 17)
    ref.train(), net.train()
    net.set_drop_path_progress(0.)  # start of training: nothing dropped
    assert torch.allclose(net(x)[1], ref(x)[1])
    net.set_drop_path_progress(1.)
    assert not torch.allclose(net(x)[1], ref(x)[1])
    net.load_state_dict(ref.state_dict())  # same BN running statistics
    ref.eval(), net.eval()
    assert torch.allclose(net(x)[1], ref(x)[1])


def test_drop_path_hook_sets_progress():
    net = AutoDeepLabNet(PAPER_JSON, filter_multiplier=1,
                         drop_path_prob=0.3)
    wrapped = SimpleNamespace(module=torch.nn.Sequential(net))
    runner = SimpleNamespace(iter=30, max_iters=120, model=wrapped)
    DropPathScheduleHook().before_train_iter(runner, 0)
    assert net.drop_path_progress == pytest.approx(0.25)
    from mmengine.registry import HOOKS
    assert HOOKS.get('DropPathScheduleHook') is DropPathScheduleHook


def test_with_cp_matches():
    torch.manual_seed(0)
    a = AutoDeepLabNet(PAPER_JSON, filter_multiplier=1)
    b = AutoDeepLabNet(PAPER_JSON, filter_multiplier=1, with_cp=True)
    b.load_state_dict(a.state_dict())
    x = torch.rand(2, 3, 17, 17)
    for net in (a, b):
        net.train()
        sum(o.sum() for o in net(x)).backward()
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-5), name


# Paper Table 2, 19 classes.
@pytest.mark.parametrize('name,expected', [('s', 10.15e6), ('m', 21.62e6),
                                           ('l', 44.42e6)])
def test_paper_parameter_counts(name, expected):
    from mmengine.config import Config
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(osp.join(
        REPO, 'configs', 'autodeeplab',
        f'autodeeplab-{name}_paper-genotype_8xb2-1.5m_cityscapes-'
        '769x769.py'))
    for part in (cfg.model.backbone, cfg.model.decode_head):
        part.norm_cfg = dict(type='BN', requires_grad=True)
    model = MODELS.build(cfg.model)
    count = sum(p.numel() for p in model.parameters())
    assert abs(count / expected - 1) < 0.005, count
    # the exact counts round to the paper's two decimals
    assert round(count / 1e6, 2) == expected / 1e6
    head = cfg.model.decode_head
    assert model.backbone.out_channels == [head.c1_in_channels,
                                           head.in_channels]
