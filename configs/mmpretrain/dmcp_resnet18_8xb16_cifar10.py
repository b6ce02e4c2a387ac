# DMCP channel pruning from mmpretrain's ResNet-18 CIFAR-10 config plus an `algorithm` block.
#   gml run configs/mmpretrain/resnet18_cifar10.toml    (once: the trained model to prune)
#   gml run configs/mmpretrain/dmcp_resnet18_8xb16_cifar10.py
_base_ = ['mmpretrain::resnet/resnet18_8xb16_cifar10.py']

# start from the trained baseline (a gml or an mmpretrain checkpoint of this architecture)
model = dict(init_from='work_dirs/mmp_resnet18_cifar10/best.pth')
train_cfg = dict(max_epochs=40)
optim_wrapper = dict(optimizer=dict(lr=0.02))
param_scheduler = dict(_delete_=True, type='CosineAnnealingLR', by_epoch=True, T_max=40)
work_dir = 'work_dirs/mmp_dmcp_resnet18_8xb16_cifar10'

algorithm = dict(
    type='DMCP',
    arch_start_training=31250,     # 10 epochs at the base config's batch size 16
    arch_train_freq=1,
    arch_sample_num=10,
    mutator=dict(
        type='DMCPMutator',
        num_sample=4,
        arch_sample_type=['max', 'min', 'scheduled_random', 'scheduled_random'],
        width=dict(max=1.0, min=0.1, offset=0.1),
        arch_learning_rate=0.5,
        arch_weight_decay=0.0,
        input_shape=[1, 3, 32, 32],
        target_flops=0.5))
