# The demo search with a multiply-adds budget (docs/budgeted_search.md):
# the decoded network, as the proxy retrain config builds it (F=8, 64x64
# input), should cost at most 12M multiply-adds (20 random genotypes of
# this space: 9.2M-27.4M, median 16.2M). Runs from this config alone: the
# first run builds the cost table (`build`, a few seconds) into `table`, as
#   python tools/build_cost_table.py configs/search_vs_random/autodeeplab_genotype-f8_1xb4-600i_demo-cityscapes-64x64.py --size 64x64 --num-layers 4 --out work_dirs/cost_tables/demo_proxy_64x64.json
# would; later runs reuse it (a table recording another config, size or
# kind is refused: delete it or change `table`).
_base_ = './autodeeplab-search_f4-l4_1xb2-30e_demo-cityscapes-64x64.py'
train_cfg = dict(
    arch_cost=dict(
        kind='macs', target=12e6, weight=1.0, penalty='hinge',
        table='work_dirs/cost_tables/demo_proxy_64x64.json',
        build=dict(
            config='configs/search_vs_random/'
            'autodeeplab_genotype-f8_1xb4-600i_demo-cityscapes-64x64.py',
            size=(64, 64), num_layers=4)))
