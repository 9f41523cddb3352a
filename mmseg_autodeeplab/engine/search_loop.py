"""The alternating α/β / weight search as an mmengine train loop.

Why a loop and not a hook: the α/β step needs its own dataloader (trainB),
whose position and RNG must survive resume, and it has to run between the
weight step and ``after_train_iter`` so that the logger, the schedulers and
the checkpoint hook see one consistent iteration. Everything else (Runner,
optimizers, schedulers, logging, checkpoints, evaluation) is stock.

One iteration:

1. weight step: ``model.train_step`` on a trainA batch with the ``weights``
   optimizer (under DDP the weight gradients are all-reduced as usual);
2. α/β step (from ``arch_start_epoch`` on): loss on a trainB batch,
   gradients w.r.t. α/β ONLY (``torch.autograd.grad`` with the weights
   frozen: no weight gradient is computed or leaked),
   averaged over ranks, one ``arch`` optimizer step (with mixed precision
   under the weight step's autocast, :mod:`.amp`).

The schedule is given in epochs over trainA (the paper: 40, α/β from 20) but
the loop runs by iteration, so it resumes exactly at any iteration.
"""
import contextlib
import copy
import os.path as osp
import random
import signal
import sys
import threading

import numpy as np
import torch
import torch.distributed as torch_dist
from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import LOOPS
from mmengine.runner import BaseLoop

from ..utils.checks import is_integer
from ..utils.threads import set_cpu_threads
from .amp import scale_loss
from .arch_cost_option import ArchCost
from .checked_loops import check_checkpoint_inputs
from .search_remedies import ArchEarlyStop, ArchNoise, OpDropout
from .utils import find_supernet, only_grad_for, unwrap_model

#: checkpoint key of the loop's own state
STATE_KEY = 'autodeeplab_search_loop'


def _rng_state():
    # plain tensors and numbers: the checkpoint must load weights-only
    version, internal, gauss_next = random.getstate()
    state = dict(python=list(internal), python_version=version,
                 python_gauss=gauss_next, torch=torch.get_rng_state())
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state['numpy'] = dict(keys=torch.from_numpy(keys.astype(np.int64)),
                          pos=int(pos), has_gauss=int(has_gauss),
                          gauss=float(gauss))
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state):
    random.setstate((state['python_version'], tuple(state['python']),
                     state['python_gauss']))
    torch.set_rng_state(state['torch'])
    npst = state['numpy']
    np.random.set_state(('MT19937', npst['keys'].numpy().astype(np.uint32),
                         npst['pos'], npst['has_gauss'], npst['gauss']))
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


def _epoch_iterator(loader, epoch, skip):
    """Iterator over ``loader``'s epoch ``epoch`` with ``skip`` batches done.

    Skipped batches are still loaded so that worker RNG streams advance
    exactly as in an uninterrupted run.
    """
    # a batch sampler hides the sampler behind a SequentialSampler
    for sampler in (loader.sampler,
                    getattr(loader.batch_sampler, 'sampler', None)):
        if hasattr(sampler, 'set_epoch'):
            sampler.set_epoch(epoch)
            break
    it = iter(loader)
    for _ in range(skip):
        next(it)
    return it


def check_schedule(max_epochs, arch_start_epoch):
    """Raise a one-line ``ValueError`` unless α/β get updated at all."""
    if not is_integer(max_epochs, 1):
        raise ValueError('train_cfg.max_epochs: expected a positive '
                         f'integer, got {max_epochs!r}')
    if not isinstance(arch_start_epoch, int) or not \
            0 <= arch_start_epoch < max_epochs:
        raise ValueError(
            f'train_cfg.arch_start_epoch={arch_start_epoch!r} lies after '
            f'the end of training (max_epochs={max_epochs}); expected an '
            f'integer in [0, {max_epochs - 1}] so that α/β are updated')


class _LoopStateHook(Hook):
    """Carries the loop's :meth:`state_dict` in every checkpoint (mmengine
    offers checkpoint callbacks to hooks only)."""
    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner, checkpoint):
        checkpoint[STATE_KEY] = runner.train_loop.state_dict()

    def after_load_checkpoint(self, runner, checkpoint):
        if STATE_KEY in checkpoint:
            runner.train_loop.load_state_dict(checkpoint[STATE_KEY])


def _arch_loader_cfg(dataloader):
    """trainB loader config: the trainA one with ``split='B'``."""
    cfg = copy.deepcopy(dataloader)
    dataset = cfg.get('dataset', {})
    if not (isinstance(dataset, dict)
            and dataset.get('type') in ('SearchSplitDataset',
                                        'mmseg.SearchSplitDataset')):
        raise ValueError(
            'train_dataloader.dataset: the search needs a SearchSplitDataset '
            "(dict(type='SearchSplitDataset', dataset=..., split='A')) so "
            'trainA/trainB are disjoint halves, or an explicit '
            'train_cfg.arch_dataloader')
    if dataset.get('split', 'A') != 'A':
        raise ValueError('train_dataloader.dataset.split: expected "A" (the '
                         f'weights half), got {dataset.get("split")!r}')
    dataset['split'] = 'B'
    return cfg


class SearchSteps:
    """The two steps of a search iteration: the loop runs them and
    ``tools/analysis/benchmark_search.py`` times them, so the benchmark's
    step is the search's (remedies, mixed precision, frozen weights).

    Args:
        model (nn.Module): the segmentor (or its DDP wrapper) with a
            supernet backbone.
        optim_wrapper (OptimWrapperDict, optional): the ``weights`` and
            ``arch`` wrappers of :class:`~.AutoDeepLabOptimWrapperConstructor`
            (the loop takes the runner's, built after it).
        arch_cost, arch_noise, op_dropout (dict, optional):
            as in :class:`AutoDeepLabSearchLoop` (``train_cfg`` keys).
    """
    # the optimizers of AutoDeepLabOptimWrapperConstructor
    weights_key, arch_key = 'weights', 'arch'
    #: the train_cfg keys that change a step
    cfg_keys = ('arch_cost', 'arch_noise', 'op_dropout')

    def __init__(self, model, optim_wrapper=None, arch_cost=None,
                 arch_noise=None, op_dropout=None):
        self.model = model
        self._optim_wrapper = optim_wrapper
        self.supernet = find_supernet(model)
        self.arch_cost = ArchCost.build(arch_cost)
        self.arch_noise = ArchNoise.build(arch_noise)
        self.op_dropout = OpDropout.build(op_dropout)
        if self.arch_cost is not None:
            self.arch_cost.check_supernet(self.supernet)

    @property
    def optim_wrapper(self):
        return self._optim_wrapper

    def weight_step(self, data_batch, progress=0.0):
        """One weight update on a trainA batch at ``progress`` (iteration
        / iterations) of the search; returns the model's log variables."""
        if self.op_dropout is not None:
            self.op_dropout.update(self.supernet, progress)
        # SDARTS-RS: at a random α nearby
        with self.arch_noise.applied(self.supernet.alphas) \
                if self.arch_noise else contextlib.nullcontext():
            outputs = self.model.train_step(
                data_batch, optim_wrapper=self.optim_wrapper[self.weights_key])
        for p in self.supernet.arch_parameters():
            p.grad = None  # the weight step must not leave α/β gradients
        return outputs

    def arch_step(self, data_batch):
        """One α/β update on a trainB batch; returns its log variables."""
        model = unwrap_model(self.model)
        wrapper = self.optim_wrapper[self.arch_key]
        params = self.supernet.arch_parameters()
        # the weights frozen for forward and backward: nothing computes
        # their gradients
        with only_grad_for(model, params):
            with wrapper.optim_context(model):
                data = model.data_preprocessor(data_batch, True)
                losses = model._run_forward(data, mode='loss')
            loss, log_vars = model.parse_losses(losses)
            if self.arch_cost is not None:
                cost = self.arch_cost.expected(self.supernet)
                penalty = self.arch_cost.penalty(cost)
                log_vars['cost'] = cost.detach()
                log_vars['cost_penalty'] = penalty.detach()
                if self.arch_cost.weight:
                    loss = loss + penalty.to(loss.dtype)
            grads = torch.autograd.grad(scale_loss(wrapper, loss), params)
        world = get_world_size()
        for p, g in zip(params, grads):
            if world > 1:
                torch_dist.all_reduce(g)
                g = g / world
            p.grad = g
        wrapper.step()
        wrapper.zero_grad()
        return log_vars


@LOOPS.register_module()
class AutoDeepLabSearchLoop(BaseLoop, SearchSteps):
    """Alternating first-order search: weights on trainA, α/β on trainB.

    Args:
        runner (Runner): the runner.
        dataloader (DataLoader | dict): trainA loader (weights).
        max_epochs (int): epochs over trainA.
        arch_start_epoch (int): α/β updates start after this many epochs
            (0 = from the first iteration); must be < ``max_epochs``.
        val_begin (int): first epoch to validate after.
        val_interval (int): validate every this many epochs (and at the end).
        arch_dataloader (dict, optional): trainB loader; by default the
            trainA config with ``dataset.split='B'``.
        val_at_start (bool): also validate the untrained supernet once
            before the first iteration (a baseline for the search's mIoU).
        arch_cost (dict, optional): a budget term in the α/β loss,
            ``dict(kind='macs', target=..., weight=..., table=PATH,
            penalty='hinge'|'log')`` (:class:`~.arch_cost_option.ArchCost`;
            ``table`` from ``tools/build_cost_table.py``). None (default):
            the paper's search, unchanged.
        cpu_threads (int | str): on CPU, torch's intra-op threads: an
            integer pins them; ``'auto'`` (default) shares the cores among
            the searches running on this machine
            (:func:`~mmseg_autodeeplab.utils.threads.set_cpu_threads`).
        arch_noise (dict, optional): ``dict(eps=...)``: SDARTS-RS noise on
            α during the weight step (:class:`~.search_remedies.ArchNoise`).
        op_dropout (dict, optional): ``dict(prob=..., ops=[...],
            decay='linear')``: P-DARTS dropout on parameter-free operators
            (:class:`~.search_remedies.OpDropout`).
        arch_early_stop (dict, optional): ``dict(max_count=2,
            op='skip_connect')``: DARTS+ stop of α/β updates
            (:class:`~.search_remedies.ArchEarlyStop`), checked at the end
            of every epoch of the α/β phase.
        All three default to None: the paper's search.
    """

    def __init__(self, runner, dataloader, max_epochs, arch_start_epoch=20,
                 val_begin=1, val_interval=1, arch_dataloader=None,
                 val_at_start=False, arch_cost=None, cpu_threads='auto',
                 arch_noise=None, op_dropout=None, arch_early_stop=None):
        check_schedule(max_epochs, arch_start_epoch)
        check_checkpoint_inputs(runner)
        if arch_dataloader is None:
            if not isinstance(dataloader, dict):
                raise ValueError('train_cfg.arch_dataloader: required when '
                                 'the train dataloader is already built')
            arch_dataloader = _arch_loader_cfg(dataloader)
        super().__init__(runner, dataloader)
        self.arch_dataloader = runner.build_dataloader(
            arch_dataloader, seed=runner.seed,
            diff_rank_seed=runner._randomness_cfg.get('diff_rank_seed',
                                                      False))
        if len(self.dataloader) == 0 or len(self.arch_dataloader) == 0:
            raise ValueError(
                'train_dataloader: trainA or trainB yields no batch (too few '
                'samples for the batch size with drop_last?)')
        self.iters_per_epoch = len(self.dataloader)
        self.max_epochs = max_epochs
        self.max_iters = max_epochs * self.iters_per_epoch
        self.arch_start_epoch = arch_start_epoch
        self.arch_start_iter = arch_start_epoch * self.iters_per_epoch
        self.val_begin = val_begin
        self.val_interval = val_interval
        self.val_at_start = val_at_start
        self.stop_training = False
        self._epoch = 0  # mmengine's resume sets _epoch and _iter
        self._iter = 0
        # trainB position: epoch of its sampler and batches consumed in it
        self._arch_epoch = 0
        self._arch_pos = 0
        self._arch_iter = None
        self._pending_rng = None
        self._stop_signal = None  # set by SIGINT/SIGTERM, acted on per iter
        self.threads = set_cpu_threads(
            cpu_threads, runner._randomness_cfg.get('deterministic', False))
        if hasattr(self.dataloader.dataset, 'metainfo'):
            runner.visualizer.dataset_meta = self.dataloader.dataset.metainfo
        SearchSteps.__init__(self, runner.model, arch_cost=arch_cost,
                             arch_noise=arch_noise, op_dropout=op_dropout)
        self.arch_early_stop = ArchEarlyStop.build(arch_early_stop)
        self._arch_stop_iter = None  # iteration α/β updates stopped at
        runner.register_hook(_LoopStateHook())

    @property
    def optim_wrapper(self):
        return self.runner.optim_wrapper  # built after the loop

    @property
    def epoch(self):
        return self._epoch

    @property
    def iter(self):
        return self._iter

    def arch_active_at(self, it):
        """Whether iteration ``it`` (0-based) includes an α/β step."""
        return it >= self.arch_start_iter and (
            self._arch_stop_iter is None or it < self._arch_stop_iter)

    def state_dict(self):
        """Loop state not covered by mmengine's checkpoint (plain tensors)."""
        state = dict(arch_epoch=self._arch_epoch, arch_pos=self._arch_pos,
                     rng=_rng_state())
        if self._arch_stop_iter is not None:
            state['arch_stop_iter'] = int(self._arch_stop_iter)
        return state

    def load_state_dict(self, state):
        self._arch_epoch = int(state['arch_epoch'])
        self._arch_pos = int(state['arch_pos'])
        stop = state.get('arch_stop_iter')
        self._arch_stop_iter = None if stop is None else int(stop)
        self._arch_iter = None
        self._pending_rng = state['rng']

    def run(self):
        # registered among the searches sharing the cores for the run only
        with self.threads or contextlib.nullcontext():
            self.runner.call_hook('before_train')
            main = threading.current_thread() is threading.main_thread()
            previous = {sig: signal.signal(sig, self._on_signal)
                        for sig in (signal.SIGINT, signal.SIGTERM) if main}
            try:
                return self._run()
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    def _validates_after(self, epoch):
        return (self.runner.val_loop is not None and epoch >= self.val_begin
                and (epoch % self.val_interval == 0
                     or self._iter >= self.max_iters))

    def _run(self):
        runner = self.runner
        epoch, done = divmod(self._iter, self.iters_per_epoch)
        if self._iter > 0:
            print_log(
                f'Resuming the search at iteration {self._iter} (epoch '
                f'{epoch}); trainB at epoch {self._arch_epoch} batch '
                f'{self._arch_pos}', logger='current')
            # killed after this checkpoint but before its validation was
            # recorded: redo it on the same weights
            if not done and self._validates_after(epoch) and any(
                    not h.has_record(self._iter) for h in runner.hooks
                    if hasattr(h, 'has_record')):
                print_log(f'Re-running the validation of epoch {epoch} (the '
                          'previous run stopped before it finished)',
                          logger='current')
                runner.val_loop.run()
            if not done:  # a checkpoint older than the decision at its
                self._check_early_stop(self._iter)  # epoch's end: redo it
        elif self.val_at_start and runner.val_loop is not None:
            runner.val_loop.run()
        while self._iter < self.max_iters and not self.stop_training:
            self._epoch, done = divmod(self._iter, self.iters_per_epoch)
            runner.call_hook('before_train_epoch')
            runner.model.train()
            batches = _epoch_iterator(self.dataloader, self._epoch, done)
            if self._pending_rng is not None:
                if self.arch_active_at(self._iter):
                    self._arch_iter = _epoch_iterator(
                        self.arch_dataloader, self._arch_epoch,
                        self._arch_pos)
                # replaying skipped batches consumed RNG: put it back exactly
                _set_rng_state(self._pending_rng)
                self._pending_rng = None
            for idx, data_batch in enumerate(batches, start=done):
                self.run_iter(idx, data_batch)
                if self.stop_training:
                    break
            runner.call_hook('after_train_epoch')
            self._epoch += 1
            if self._validates_after(self._epoch):
                runner.val_loop.run()
        runner.call_hook('after_train')
        return runner.model

    def run_iter(self, idx, data_batch):
        runner = self.runner
        runner.call_hook('before_train_iter', batch_idx=idx,
                         data_batch=data_batch)
        if self.threads is not None and self.threads.update():
            print_log(f'CPU threads: {self.threads.threads} (searches '
                      'running on this machine share its cores)',
                      logger='current')
        # 1. weight step on trainA
        outputs = self.weight_step(data_batch, self._iter / self.max_iters)
        # 2. α/β step on trainB
        if self.arch_active_at(self._iter):
            arch_log = self.arch_step(self._next_arch_batch())
            outputs.update({f'arch_{k}': v for k, v in arch_log.items()})
        if (self._iter + 1) % self.iters_per_epoch == 0:
            # before after_train_iter: a checkpoint written at the epoch's
            # last iteration (by interval or SIGTERM) must carry the stop,
            # or a resume there would update α/β one epoch longer
            self._check_early_stop(self._iter + 1)
        runner.call_hook('after_train_iter', batch_idx=idx,
                         data_batch=data_batch, outputs=outputs)
        signum = self._stop_signal or 0
        if get_world_size() > 1:  # every rank stops at the same iteration
            signum = torch.tensor([signum], dtype=torch.int64)
            torch_dist.all_reduce(signum, op=torch_dist.ReduceOp.MAX)
            signum = int(signum.item())
        if signum:
            self._checkpoint_and_exit(self._stop_signal or signum)
        self._iter += 1

    def _check_early_stop(self, next_iter):
        """DARTS+: stop α/β updates from ``next_iter`` (an epoch boundary)
        if the decoded cell holds too many of the counted operator."""
        stop = self.arch_early_stop
        if stop is None or self._arch_stop_iter is not None or \
                not self.arch_active_at(next_iter - 1) or \
                next_iter >= self.max_iters:
            return
        count = stop.count(self.supernet.alphas, self.supernet.primitives)
        if count >= stop.max_count:
            self._arch_stop_iter = next_iter
            print_log(f'arch_early_stop: the decoded cell holds {count} '
                      f'{stop.op} (>= {stop.max_count}) after epoch '
                      f'{next_iter // self.iters_per_epoch}: α/β updates '
                      f'stop at iteration {next_iter}; the weights keep '
                      'training', logger='current')

    def _on_signal(self, signum, frame):
        """SIGINT/SIGTERM finish the iteration, checkpoint and exit; a
        second Ctrl-C stops at once (the default behaviour)."""
        if self._stop_signal is not None and signum == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        self._stop_signal = signum
        print(f'{signal.Signals(signum).name} received: finishing '
              'iteration, then writing a checkpoint (Ctrl-C again to '
              'stop at once)', file=sys.stderr, flush=True)

    def _checkpoint_and_exit(self, signum):
        """Write ``iter_{N}.pth`` (atomic, digest) and exit 128+signal."""
        runner = self.runner
        name = f'iter_{self._iter + 1}.pth'
        hook = next((h for h in runner.hooks
                     if hasattr(h, '_atomic_saves')), None)
        with hook._atomic_saves(runner) if hook else contextlib.nullcontext():
            runner.save_checkpoint(runner.work_dir, name, by_epoch=False)
        config = getattr(runner.cfg, 'filename', None) or 'CONFIG'
        print(f'Stopped by {signal.Signals(signum).name} after iteration '
              f'{self._iter + 1}: checkpoint '
              f'{osp.join(runner.work_dir, name)} written; continue with: '
              f'python tools/search.py {config} --work-dir '
              f'{runner.work_dir} --resume', file=sys.stderr, flush=True)
        raise SystemExit(128 + int(signum))

    def _next_arch_batch(self):
        if self._arch_iter is None:
            self._arch_iter = _epoch_iterator(
                self.arch_dataloader, self._arch_epoch, self._arch_pos)
        batch = next(self._arch_iter, None)
        if batch is None:  # trainB exhausted: start its next epoch
            self._arch_epoch, self._arch_pos = self._arch_epoch + 1, 0
            self._arch_iter = _epoch_iterator(self.arch_dataloader,
                                              self._arch_epoch, 0)
            batch = next(self._arch_iter)
        self._arch_pos += 1
        return batch
