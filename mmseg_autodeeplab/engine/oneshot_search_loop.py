"""The one-shot search: single-path training, then SPOS's evolution."""
import os.path as osp

from mmengine.registry import LOOPS

from ..utils.atomic import atomic_write_json
from .checked_loops import CheckedIterBasedTrainLoop
from .utils import unwrap_model

#: what the search writes into the work_dir (tools/search.py's outputs)
STATE_FILE, PARETO_FILE = 'evolution_state.json', 'pareto.json'
#: the evolution's settings (mmrazor's SPOS names) and their defaults
SEARCH_DEFAULTS = dict(num_candidates=20, top_k=5, num_mutation=8,
                       num_crossover=8, mutate_prob=0.1, max_epochs=10,
                       constraints_range=(0.9, 1.1), seed=0)


@LOOPS.register_module()
class OneShotSearchLoop(CheckedIterBasedTrainLoop):
    """Train an :class:`AutoDeepLabOneShot` segmentor ``max_iters``
    iterations (a :class:`SubnetSamplerHook` activates one genotype per
    iteration), then search it: SPOS's evolution
    (:func:`~mmseg_autodeeplab.search_space.evolution.evolution_search`),
    each candidate scored with its inherited weights, BN statistics
    re-estimated, on the val set (:class:`GenotypeScorer`).

    Writes ``genotype.json`` (the best, with score and cost), the Pareto
    front of score against cost (``pareto.json``, and ``pareto/*.json``
    to decode) and ``evolution_state.json`` (a killed search resumes from
    it to the uninterrupted result).

    Args:
        search (dict): the evolution's settings (:data:`SEARCH_DEFAULTS`
            keys) plus ``calib_batches`` (8) and ``metric`` ('mIoU').
        arch_cost (dict, optional): the paper search's ``arch_cost`` (a
            cost table and ``target``); every candidate's cost is within
            ``constraints_range`` of the target. None: unconstrained.
        **kwargs: :class:`IterBasedTrainLoop` arguments.

    Data and checkpoints are checked first, and ``--resume`` continues from
    the intact checkpoint with the highest iteration
    (:class:`CheckedIterBasedTrainLoop`).
    """

    def __init__(self, runner, dataloader, max_iters, search=None,
                 arch_cost=None, **kwargs):
        super().__init__(runner, dataloader, max_iters, **kwargs)
        search = dict(search or {})
        self.calib_batches = search.pop('calib_batches', 8)
        self.metric = search.pop('metric', 'mIoU')
        unknown = sorted(set(search) - set(SEARCH_DEFAULTS))
        if unknown:
            raise ValueError(f'train_cfg.search.{unknown[0]}: unknown key; '
                             f'expected {", ".join(SEARCH_DEFAULTS)}, '
                             'calib_batches, metric')
        self.search_cfg = {**SEARCH_DEFAULTS, **search}
        from .arch_cost_option import ArchCost
        self.arch_cost = ArchCost.build(arch_cost)

    def run(self):
        model = super().run()
        self.search()
        return model

    def search(self):
        """The evolution over the trained one-shot; returns its result."""
        from mmengine.dist import is_main_process

        from ..oneshot_eval import GenotypeScorer
        from ..search_space.evolution import evolution_search
        runner, logger = self.runner, self.runner.logger
        space = unwrap_model(runner.model).backbone.space
        scorer = GenotypeScorer(runner, self.calib_batches, self.metric)
        cost, record = self.arch_cost, None  # None: no constraint
        cost_fn, target = (lambda genotype: 1.0), 1.0
        if cost is not None:
            cost_fn, target = cost.table.predicted, cost.target
            record = dict(kind=cost.kind, target=cost.target)

        def progress(index, total, genotype, score, cost):
            logger.info(f'evolution [{index}/{total}] {self.metric} '
                        f'{score:.2f} cost {cost / 1e6:.2f}M path '
                        f'{list(genotype.path)}')

        logger.info('evolution: ' + ', '.join(
            f'{k}={v}' for k, v in self.search_cfg.items()))
        result = evolution_search(
            space, scorer, cost_fn, target, progress=progress,
            state_file=osp.join(runner.work_dir, STATE_FILE),
            **self.search_cfg)
        best = result.top_k[0]
        if is_main_process():
            data = best.genotype.to_dict()
            data['score'] = {self.metric: best.score}
            if record:
                data['cost'] = dict(record, predicted=best.cost)
            atomic_write_json(osp.join(runner.work_dir, 'genotype.json'),
                              data)
            atomic_write_json(osp.join(runner.work_dir, PARETO_FILE), [
                dict(score=c.score, cost=c.cost,
                     genotype=c.genotype.to_dict()) for c in result.pareto])
            for i, c in enumerate(result.pareto):  # one decodable file each
                c.genotype.save(osp.join(runner.work_dir, 'pareto',
                                         f'{i:02d}_{c.cost / 1e6:.2f}M.json'))
        logger.info(f'evolution: best {self.metric} {best.score:.2f} at '
                    f'cost {best.cost / 1e6:.2f}M; pareto front of '
                    f'{len(result.pareto)}; rejections {result.rejections}')
        return result
