# Quantization-aware training (IAO) from mmpretrain's ResNet-18 CIFAR-10 config plus an `algorithm`
# block; the FX quantizer traces the mmpretrain model, so no stubs or fuse lists are needed.
#   gml run configs/mmpretrain/resnet18_cifar10.toml    (once: the float model)
#   gml run configs/mmpretrain/iao_resnet18_8xb16_cifar10.py
_base_ = ['mmpretrain::resnet/resnet18_8xb16_cifar10.py']

model = dict(init_from='work_dirs/mmp_resnet18_cifar10/best.pth')
train_cfg = dict(max_epochs=5)
optim_wrapper = dict(optimizer=dict(lr=0.001))
param_scheduler = dict(_delete_=True, type='CosineAnnealingLR', by_epoch=True, T_max=5)
work_dir = 'work_dirs/mmp_iao_resnet18_8xb16_cifar10'

algorithm = dict(
    type='IAO',
    freeze_bn_after=3,
    freeze_observer_after=4,
    quantizer=dict(type='FxQuantizer', backend='x86'))
