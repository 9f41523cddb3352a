# The paper's Cityscapes search: F=8, L=12, B=5, 321x321 crops from
# half-resolution images, batch 2, 40 epochs over trainA, alpha/beta from 20.
_base_ = [
    '../_base_/models/autodeeplab_search.py',
    '../_base_/datasets/cityscapes_search_321x321.py',
    'mmseg::_base_/default_runtime.py', '../_base_/schedules/search_40e.py'
]
custom_imports = dict(imports=['mmseg_autodeeplab'], allow_failed_imports=False)
crop_size = (321, 321)
data_preprocessor = dict(size=crop_size)
model = dict(data_preprocessor=data_preprocessor)
log_processor = dict(by_epoch=True)
# A rank that dies makes the others fail after this many seconds instead
# of hanging in a collective.
env_cfg = dict(dist_cfg=dict(backend='nccl', timeout=1800))
