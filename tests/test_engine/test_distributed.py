"""Two CPU processes (gloo): α, β and weights stay identical across ranks."""
import json
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(osp.dirname(HERE))


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_rank_search_keeps_ranks_identical(tiny_cityscapes, tmp_path):
    work = str(tmp_path / 'dist')
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    cmd = [sys.executable, '-m', 'torch.distributed.run',
           '--nproc_per_node', '2', '--master_port', str(_free_port()),
           osp.join(HERE, 'run_dist_search.py'), tiny_cityscapes,
           work]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = torch.load(osp.join(work, 'rank0.pt'), weights_only=True)
    r1 = torch.load(osp.join(work, 'rank1.pt'), weights_only=True)
    assert r0['world'] == r1['world'] == 2
    # every parameter, α and β included, identical on both ranks
    assert set(r0['state']) == set(r1['state'])
    for name in r0['state']:
        assert torch.equal(r0['state'][name], r1['state'][name]), name
    # and α/β actually moved (the arch phase ran, synchronised)
    assert not torch.equal(r0['state']['backbone.alphas'], r0['arch0'][0])
    assert not torch.equal(r0['state']['backbone.betas'], r0['arch0'][1])
    # global batch = 2 ranks x 2 images: 4 trainA images -> 1 iter / epoch
    assert r0['iters_per_epoch'] == 1 and r0['iters'] == 2
    # the ranks see different, disjoint shards of trainA and trainB
    assert not set(r0['a_indices']) & set(r1['a_indices'])
    assert not set(r0['b_indices']) & set(r1['b_indices'])
    # genotype written once, by rank 0, and complete
    assert osp.isfile(osp.join(work, 'genotype.json'))


def test_a_rank_that_finds_the_cost_table_built_reaches_every_collective(
        tmp_path, tiny_retrain_cfg):
    """Rank 0 builds the missing ``arch_cost`` table; rank 1 comes late and
    finds it on disk. Both reach the same collectives and end (before,
    rank 1 skipped the barrier rank 0 waited in: mismatched collectives)."""
    config = tmp_path / 'retrain.py'
    tiny_retrain_cfg().dump(str(config))
    table, out = tmp_path / 'cost' / 'macs.json', tmp_path / 'out'
    port = _free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK')}
    env.update(PYTHONPATH=REPO, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore',
               MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port),
               WORLD_SIZE='2')
    ranks = [subprocess.Popen(
        [sys.executable, osp.join(HERE, 'run_dist_cost_table.py'),
         str(table), str(config), str(out)],
        env=dict(env, RANK=str(rank)), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True) for rank in (0, 1)]
    outs = [p.communicate(timeout=300) for p in ranks]
    for p, (_, err) in zip(ranks, outs):
        assert p.returncode == 0, err[-2000:]
    seen = [json.loads((tmp_path / f'out.rank{r}.json').read_text())
            for r in (0, 1)]
    assert seen[0] == seen[1] and [r for r, _ in seen[0]] == [0, 1]
    assert seen[0][0][1] == seen[0][1][1] > 0  # one table, the same stem
    assert sorted(os.listdir(table.parent)) == ['macs.json', 'macs.json.lock']
