"""Scoring genotypes with a search's trained weights (the ranking tools'
score and the one-shot evolution's fitness): the genotype's network in the
trained model (a one-shot's exact sub-network, a supernet's one-hot α/β),
BN statistics re-estimated first (SPOS; they were gathered over many
networks), scored by mmseg's IoUMetric through the val loop.
"""
import contextlib
import itertools
import tempfile


def recalibrate_bn(model, batches):
    """Re-estimate every BN's running statistics as the cumulative average
    over ``batches`` (torch's ``update_bn``: train mode, no gradient);
    returns the model in eval mode."""
    import torch
    from torch.optim.swa_utils import update_bn

    class Forward(torch.nn.Module):  # update_bn calls module(batch)

        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, batch):
            data = self.model.data_preprocessor(batch, True)
            return self.model._run_forward(data, mode='tensor')

    update_bn(batches, Forward())
    return model.eval()


class GenotypeScorer:
    """``scorer(genotype) -> float``: ``metric`` of the genotype's network
    in a runner's trained model on its val loop.

    Args:
        runner (Runner): holds the trained model and the val loop.
        calib_batches (int): training batches for the BN statistics.
        metric (str): the IoUMetric key (``'mIoU'``, ``'aAcc'``, ...).

    ``scorer(None)`` scores a supernet's mixed α/β as trained.
    """

    def __init__(self, runner, calib_batches=8, metric='mIoU'):
        self.runner, self.metric, self._tmp = runner, metric, None
        self.batches = list(itertools.islice(runner.build_dataloader(
            runner.cfg.train_dataloader, seed=runner.seed), calib_batches))

    @classmethod
    def from_checkpoint(cls, cfg, checkpoint, calib_batches=8,
                        metric='mIoU'):
        """A scorer of a search's config (its dumped copy; not modified)
        and ``checkpoint`` (read weights-only), in a runner of its own."""
        import copy

        from mmengine.runner import Runner
        cfg, tmp = copy.deepcopy(cfg), tempfile.TemporaryDirectory()
        cfg.work_dir = tmp.name  # the scoring's logs, not the search's
        cfg.custom_hooks = []  # no genotype files, no checkpoints
        cfg.default_hooks.pop('checkpoint', None)
        cfg.load_from, cfg.resume = None, False
        cfg.log_level = 'WARNING'
        runner = Runner.from_cfg(cfg)
        runner.load_checkpoint(checkpoint, map_location='cpu')
        scorer = cls(runner, calib_batches, metric)
        scorer._tmp = tmp
        return scorer

    @property
    def oneshot(self):
        """True for a one-shot model (no mixed α/β to score)."""
        from .engine.utils import unwrap_model
        return hasattr(unwrap_model(self.runner.model).backbone, 'activate')

    def _network(self, genotype):
        from .engine.utils import find_supernet, unwrap_model
        from .models.backbones.autodeeplab_oneshot import activate_subnet
        from .search_space.decode import genotype_weights
        model = unwrap_model(self.runner.model)
        if self.oneshot:
            activate_subnet(model, genotype)
            return contextlib.nullcontext()
        supernet = find_supernet(model)
        return contextlib.nullcontext() if genotype is None else \
            supernet.fixed_arch(*genotype_weights(genotype,
                                                  supernet.num_levels))

    def __call__(self, genotype):
        logger, level = self.runner.logger, self.runner.logger.level
        logger.setLevel('WARNING')  # no metric table per candidate
        try:
            with self._network(genotype):
                recalibrate_bn(self.runner.model, self.batches)
                metrics = self.runner.val_loop.run()
        finally:
            logger.setLevel(level)
        return float(metrics[self.metric])

    def close(self):
        if self._tmp is not None:
            self._tmp.cleanup()
