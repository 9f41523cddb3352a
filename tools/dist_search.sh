#!/usr/bin/env bash
# Distributed search, in the style of mmseg's tools/dist_train.sh:
#   bash tools/dist_search.sh CONFIG NUM_GPUS [search.py args...]
# On machines without CUDA the processes use the gloo backend.
CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}

PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
python -m torch.distributed.run \
    --nnodes=$NNODES \
    --node_rank=$NODE_RANK \
    --master_addr=$MASTER_ADDR \
    --nproc_per_node=$GPUS \
    --master_port=$PORT \
    "$(dirname "$0")/search.py" \
    "$CONFIG" \
    --launcher pytorch "${@:3}"
