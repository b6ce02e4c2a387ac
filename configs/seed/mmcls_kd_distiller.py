# The seed document's first `algorithm` example: an mmcls ImageClassifier as `model` (the student),
# and ImageClassifierDistiller with `pretrained=None` (GML backbones fit inside through the `gml.` scope).
# Needs gml-mmpretrain. Swapped for digits: mmpretrain's CIFAR ResNet-18 student with a
# GlobalAveragePooling neck and a linear head, a gml.SmallCNN teacher, the logits distilled.
#   gml config check configs/seed/mmcls_kd_distiller.py
_base_ = ['./_base_/digits_cnn.py']

runtime = dict(work_dir='work_dirs/seed_mmcls_kd_distiller')

model = dict(
    type='mmcls.ImageClassifier',
    backbone=dict(type='ResNet_CIFAR', depth=18, num_stages=4, out_indices=(3, ), style='pytorch'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=512),
)

algorithm = dict(
    type='ImageClassifierDistiller',
    model=model,
    pretrained=None,
    distiller=dict(
        type='TeacherDistiller',
        distill_cfg=dict(
            teacher=dict(
                ckpt_path=None,
                model=dict(type='gml.SmallCNN', width=16),
                distill_head_cfg=[
                    dict(student_module='head.fc', teacher_module='head.fc',
                         head=dict(type='BaseDistillationHead', name='kd',
                                   loss=dict(type='DistillKLDivLoss', tau=4.0, loss_weight=1.0))),
                ]))))
