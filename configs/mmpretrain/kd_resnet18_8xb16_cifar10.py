# Knowledge distillation from an mmpretrain config, the way the original system wrapped its training
# configs: the student is mmpretrain's own ResNet-18 CIFAR-10 config (model, dataset, pipelines,
# schedule), and the `algorithm` block adds a ResNet-34 teacher.
#   gml run configs/mmpretrain/resnet18_cifar10.toml algorithm.model.backbone.depth=34 \
#       runtime.work_dir=work_dirs/mmp_resnet34_cifar10        (the teacher, once)
#   gml run configs/mmpretrain/kd_resnet18_8xb16_cifar10.py
# `gml config show` prints what this becomes in gml's vocabulary.
_base_ = ['mmpretrain::resnet/resnet18_8xb16_cifar10.py']

work_dir = 'work_dirs/mmp_kd_resnet18_8xb16_cifar10'

algorithm = dict(
    type='TeacherStudentDistillation',
    # no `model` here: the student is the `model` of the _base_ config
    distiller=dict(
        type='TeacherDistiller',
        distill_cfg=dict(
            teacher=dict(
                ckpt_path='work_dirs/mmp_resnet34_cifar10/best.pth',
                model=dict(
                    type='mmcls.ImageClassifier',
                    backbone=dict(type='ResNet_CIFAR', depth=34, num_stages=4, out_indices=(3, ),
                                  style='pytorch'),
                    neck=dict(type='GlobalAveragePooling'),
                    head=dict(type='LinearClsHead', num_classes=10, in_channels=512)),
                distill_head_cfg=[
                    dict(student_module='head.fc', teacher_module='head.fc',
                         head=dict(type='BaseDistillationHead', name='kd',
                                   loss=dict(type='DistillKLDivLoss', tau=4.0, loss_weight=1.0))),
                ]))))
