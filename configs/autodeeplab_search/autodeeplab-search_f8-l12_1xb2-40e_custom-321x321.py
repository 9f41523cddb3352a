# The paper's search (F=8, L=12, B=5, 321x321 crops of images resized to
# 1024x512, batch 2, 40 epochs, alpha/beta from epoch 20) on your own
# dataset in mmseg's generic layout (BaseSegDataset):
#   data_root/img_dir/{train,val}/NAME.jpg, data_root/ann_dir/{train,val}/NAME.png
# trainA/trainB are the two halves of img_dir/train (SearchSplitDataset).
# Point it at your data with a small delta config (docs/custom_dataset.md
# shows one): data_root, metainfo (classes, palette) and
# model.decode_head.num_classes = len(classes).
_base_ = './autodeeplab-search_f8-l12_1xb2-40e_cityscapes-321x321.py'
data_root = 'data/my_dataset'
metainfo = dict(classes=('background', 'foreground'))
custom_dataset = dict(
    _delete_=True,
    type='BaseSegDataset',
    data_root=data_root,
    metainfo=metainfo,
    img_suffix='.jpg',
    seg_map_suffix='.png')
train_dataloader = dict(
    dataset=dict(
        dataset=dict(
            custom_dataset,
            data_prefix=dict(
                img_path='img_dir/train', seg_map_path='ann_dir/train'),
            pipeline={{_base_.train_pipeline}})))
val_dataloader = dict(
    dataset=dict(
        custom_dataset,
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
model = dict(decode_head=dict(num_classes=2))
