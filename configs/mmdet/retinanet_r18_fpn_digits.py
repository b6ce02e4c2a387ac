# mmdet's own RetinaNet-R18 config (`mmdet::` base, read from the installed mmdet) trained by gml on
# the digits-detection set: the model comes from mmdet's file, made small for 64x64 canvases here.
#   gml run configs/mmdet/retinanet_r18_fpn_digits.py
# `gml config show configs/mmdet/retinanet_r18_fpn_digits.py` prints what this becomes in gml's vocabulary.
_base_ = ['mmdet::retinanet/retinanet_r18_fpn_1x_coco.py']

work_dir = 'work_dirs/mmdet_retinanet_r18_fpn_digits'

model = dict(
    backbone=dict(base_channels=16, out_indices=(1, 2, 3), init_cfg=None),
    neck=dict(in_channels=[32, 64, 128], out_channels=32, start_level=0, add_extra_convs=False, num_outs=3),
    bbox_head=dict(in_channels=32, feat_channels=32, stacked_convs=2,
                   anchor_generator=dict(octave_base_scale=2, strides=[8, 16, 32])),
    test_cfg=dict(nms_pre=200, max_per_img=20))

optim_wrapper = dict(optimizer=dict(_delete_=True, type='AdamW', lr=0.002, weight_decay=1e-4))
train_cfg = dict(max_epochs=30)
randomness = dict(seed=0)

# gml tables on top of the translation: the built-in digits-detection set instead of COCO
data = dict(type='mmdet.DigitsDetection')
train = dict(batch_size=16, val_batch_size=50, lr_schedule='cosine')
