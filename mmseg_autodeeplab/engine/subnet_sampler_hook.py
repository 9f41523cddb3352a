"""Single-path training of a one-shot network: one genotype per iteration."""
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from .utils import unwrap_model

#: checkpoint key of the sampler's state and the active genotype
STATE_KEY = 'subnet_sampler'


@HOOKS.register_module()
class SubnetSamplerHook(Hook):
    """Before every train iteration, draw a genotype and activate it in the
    segmentor's :class:`AutoDeepLabOneShot` (and its head), so the step
    trains that network alone (SPOS).

    Args:
        sampler (str): ``'uniform'`` (SPOS: every valid genotype equally
            likely) or ``'fair'`` (FairNAS-style strict fairness, see
            :class:`FairSampler`).
        seed (int, optional): the sampler's seed; default the runner's.
        val_genotype (str, optional): genotype JSON validated and tested
            (default: the one active at the time).

    The sampler's state, the active genotype and torch's RNG go into every
    checkpoint as plain data: a resumed run draws what the uninterrupted one
    would, and its first step (mmengine replays the skipped batches, and
    with them the pipeline's numpy draws) runs with the same dropout RNG.
    """
    priority = 'NORMAL'

    def __init__(self, sampler='uniform', seed=None, val_genotype=None):
        from ..search_space.oneshot_sampling import FairSampler, UniformSampler
        kinds = dict(uniform=UniformSampler, fair=FairSampler)
        if sampler not in kinds:
            raise ValueError(f'SubnetSamplerHook: sampler={sampler!r}; '
                             f'expected one of {", ".join(kinds)}')
        self.kind, self.seed, self.val_genotype = kinds[sampler], seed, \
            val_genotype
        self.sampler, self._loaded, self._rng = None, None, None

    def _build(self, runner):
        model = unwrap_model(runner.model)
        if self.sampler is None:
            seed = self.seed if self.seed is not None else runner.seed
            self.sampler = self.kind(model.backbone.space, seed=seed or 0)
            if self._loaded:  # its genotype: activated at the load
                self.sampler.load_state_dict(self._loaded['state'])
        return self.sampler

    @staticmethod
    def _activate(runner, genotype):
        from ..models.backbones.autodeeplab_oneshot import activate_subnet
        activate_subnet(unwrap_model(runner.model), genotype)

    def before_train(self, runner):
        self._build(runner)

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if self._rng is not None:  # the first step after a resume
            torch.set_rng_state(self._rng)
            self._rng = None
        self._activate(runner, self._build(runner).sample())

    def before_val_epoch(self, runner):
        if self.val_genotype is not None:
            self._activate(runner, self.val_genotype)

    before_test_epoch = before_val_epoch

    def before_save_checkpoint(self, runner, checkpoint):
        genotype = unwrap_model(runner.model).backbone.genotype
        checkpoint[STATE_KEY] = dict(
            state=self._build(runner).state_dict(),
            genotype=None if genotype is None else genotype.to_dict(),
            torch_rng=torch.get_rng_state())

    def after_load_checkpoint(self, runner, checkpoint):
        self._loaded, self.sampler = checkpoint.get(STATE_KEY), None
        self._rng = (self._loaded or {}).get('torch_rng')
        if self._loaded and self._loaded['genotype'] is not None:
            self._activate(runner, self._loaded['genotype'])
