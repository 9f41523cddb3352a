"""Two ranks build an ``arch_cost`` table where rank 1 finds it already
built (used by test_distributed.py).

``python run_dist_cost_table.py TABLE RETRAIN_CONFIG OUT`` under RANK,
WORLD_SIZE=2, MASTER_ADDR and MASTER_PORT. Rank 1 looks only once rank 0
has written the table (a late rank); afterwards both ranks gather one
object: it arrives only if both reached the same collectives.
"""
import datetime
import json
import os
import sys
import time

import torch.distributed as torch_dist


def main():
    table, config, out = sys.argv[1:4]
    torch_dist.init_process_group(
        'gloo', timeout=datetime.timedelta(seconds=20))
    rank = torch_dist.get_rank()
    from mmseg_autodeeplab.engine.arch_cost_option import ArchCost
    if rank == 1:
        while not os.path.isfile(table):
            time.sleep(0.05)
    cost = ArchCost.build(dict(
        kind='macs', target=1e6, weight=1., table=table,
        build=dict(config=config, size=(32, 32), num_layers=3)))
    gathered = [None, None]
    torch_dist.all_gather_object(gathered, (rank, cost.table.stem))
    with open(f'{out}.rank{rank}.json', 'w') as f:
        json.dump(gathered, f)
    # both ranks done with the group before either tears it down; then
    # no interpreter teardown: gloo's threads still aborted a rank there
    # now and then ("terminate called without an active exception", 1 of
    # about 10 runs), after every check of this test had passed
    torch_dist.barrier()
    torch_dist.destroy_process_group()
    sys.stdout.flush()
    os._exit(0)


if __name__ == '__main__':
    main()
