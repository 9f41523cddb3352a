"""A tiny dataset in mmseg's generic layout (BaseSegDataset), for tests."""
import os
import os.path as osp


def make_custom_dataset(root, num_train=4, num_val=2, size=(64, 96),
                        num_classes=3, seed=0):
    """mmseg's generic layout: img_dir/{train,val}/*.jpg, ann_dir/*.png;
    each image is split into class regions with their own colour."""
    import cv2
    import numpy as np
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 255, (num_classes, 3))
    h, w = size
    for split, n in (('train', num_train), ('val', num_val)):
        os.makedirs(osp.join(root, 'img_dir', split), exist_ok=True)
        os.makedirs(osp.join(root, 'ann_dir', split), exist_ok=True)
        for i in range(n):
            label = np.zeros(size, np.uint8)
            for c in range(1, num_classes):
                y, x = rng.integers(0, h // 2), rng.integers(0, w // 2)
                label[y:y + h // 2, x:x + w // 2] = c
            img = colours[label] + rng.integers(0, 20, (h, w, 3))
            name = f'{split}_{i:03d}'
            cv2.imwrite(osp.join(root, 'img_dir', split, name + '.jpg'),
                        img.clip(0, 255).astype(np.uint8))
            cv2.imwrite(osp.join(root, 'ann_dir', split, name + '.png'),
                        label)
    return root
