"""Decode, save and log the genotype during the search."""
import json
import os.path as osp

import torch
from mmengine.dist import is_main_process, master_only
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

from ..arch_cost import format_cost
from ..search_space import decode_genotype
from ..search_space.decode import arch_entropies
from ..utils import atomic_write_json
from .atomic_checkpoint_hook import exit_on_write_failure, remove_stale_files
from .utils import find_supernet


def arch_summary(supernet):
    """α/β as probabilities plus their entropies (plain Python values)."""
    with torch.no_grad():
        alpha = torch.softmax(supernet.alphas.detach().float().cpu(), -1)
        beta = supernet.normalized_betas().detach().float().cpu()
    alpha_entropy, beta_entropy = arch_entropies(alpha, beta)
    return dict(alpha_entropy=alpha_entropy, beta_entropy=beta_entropy,
                alpha=alpha.tolist(), beta=beta.tolist())


@HOOKS.register_module()
class GenotypeHook(Hook):
    """Write the decoded genotype at every validation and at the end.

    Files in ``work_dir``: ``genotype.json`` (latest),
    ``genotypes/genotype_epoch_{E}.json`` and ``search_history.json`` (per
    validation: mIoU, α/β probabilities and entropies, the genotype, whether
    α/β were updated yet and the epoch their updates start: all that
    ``tools/plot_search.py`` draws, so it decodes and infers nothing), all
    written atomically. A changed genotype is logged in one line; entropies
    go to the visualizer. With a cost table (``train_cfg.arch_cost``) the
    genotype's predicted cost and the expected cost under α/β are logged and
    recorded too (a ``cost`` field, which :meth:`Genotype.load` ignores).
    ``tools/plot_search.py`` draws any recorded validation, also while the
    search runs.

    Args:
        end_level (int, optional): force the decoded path's last level.
    """
    priority = 'LOW'

    def __init__(self, end_level=None):
        self.end_level = end_level
        self._last = None
        self._history = []

    def before_train(self, runner):
        if is_main_process():  # leftovers of a killed write
            remove_stale_files(osp.join(runner.work_dir, 'genotypes'))
        path = osp.join(runner.work_dir, 'search_history.json')
        if osp.isfile(path) and runner.iter > 0:  # resumed: keep history
            with open(path, encoding='utf-8') as f:
                self._history = [h for h in json.load(f)
                                 if h['iter'] <= runner.iter]
            if self._history:
                self._last = self._history[-1]['genotype']

    def has_record(self, iteration):
        """Whether the history holds the validation after ``iteration``."""
        return any(h['iter'] == iteration for h in self._history)

    def after_val_epoch(self, runner, metrics=None):
        # only during a search (not a stand-alone val/test run)
        if hasattr(getattr(runner, '_train_loop', None), 'arch_start_iter'):
            self._record(runner, metrics or {})

    def after_train(self, runner):
        if not self.has_record(runner.iter):
            self._record(runner, {})
        print_log('Final genotype written to '
                  f'{osp.join(runner.work_dir, "genotype.json")}:\n'
                  + self._genotype(find_supernet(runner.model)).describe(),
                  logger='current')

    def _genotype(self, net):
        return decode_genotype(net.alphas, net.betas, net.search_space(),
                               end_level=self.end_level)

    def _record(self, runner, metrics):
        net = find_supernet(runner.model)
        genotype = self._genotype(net)
        summary = arch_summary(net)
        scalars = {'search/alpha_entropy': summary['alpha_entropy'],
                   'search/beta_entropy': summary['beta_entropy'],
                   'search/genotype_changed': int(
                       self._last is not None
                       and self._last != genotype.to_dict())}
        model, cost = runner.train_loop.arch_cost, None
        if model is not None:
            with torch.no_grad():
                expected = float(model.expected(net))
            cost = dict(kind=model.kind,
                        predicted=model.table.predicted(genotype),
                        expected=expected, target=model.target,
                        input_size=model.table.data.get('input_size'),
                        table=model.table.source)
            scalars['search/predicted_cost'] = cost['predicted']
            scalars['search/expected_cost'] = expected
            kind = cost['kind']
            print_log(f'decoded genotype: predicted '
                      f'{format_cost(cost["predicted"], kind)} (target '
                      f'{format_cost(cost["target"], kind)}, ratio '
                      f'{cost["predicted"] / cost["target"]:.3f}); expected '
                      f'under alpha/beta {format_cost(expected, kind)}',
                      logger='current')
        runner.visualizer.add_scalars(scalars, step=runner.iter)
        with exit_on_write_failure(runner.work_dir):
            self._write(runner, genotype, summary, cost, metrics)

    @master_only  # rank 0 alone writes the files
    def _write(self, runner, genotype, summary, cost, metrics):
        loop = runner.train_loop
        epoch = runner.iter // loop.iters_per_epoch
        data = genotype.to_dict()
        for path in (osp.join(runner.work_dir, 'genotype.json'),
                     osp.join(runner.work_dir, 'genotypes',
                              f'genotype_epoch_{epoch}.json')):
            atomic_write_json(path, data if cost is None else
                              dict(data, cost=cost))
        if data != self._last:
            cell = '; '.join(genotype.cell.describe())
            strides = '-'.join(str(s) for s in genotype.path_strides)
            verb = 'genotype' if self._last is None else 'genotype changed'
            print_log(f'{verb} at epoch {epoch}: {cell} | path {strides}',
                      logger='current')
        self._last = data
        miou = metrics.get('mIoU')
        # a validation re-run after a resume replaces its earlier record
        self._history = [h for h in self._history if h['iter'] != runner.iter]
        self._history.append(dict(
            epoch=epoch, iter=runner.iter,
            # whether the iteration just finished updated α/β
            arch_active=loop.arch_active_at(runner.iter - 1),
            arch_start_epoch=loop.arch_start_epoch,
            mIoU=None if miou is None else float(miou), **summary,
            genotype=data, **({} if cost is None else dict(cost=cost))))
        atomic_write_json(osp.join(runner.work_dir, 'search_history.json'),
                          self._history)
