# The seed document's pruning example (DMCP): the target network as a top-level `model` helper,
# `algorithm` with the architecture-update schedule (arch_start_training, arch_train_freq,
# arch_sample_num) and the DMCP mutator with its sampling modes, architecture learning rate and
# weight decay, `sample_width=None` (computed by the mutator) and the FLOPs input shape.
# Swapped for digits: gml.SmallCNN, a 1x8x8 input shape, a short schedule.
#   gml config check configs/seed/prune_dmcp.py
_base_ = ['./_base_/digits_cnn.py']

data = dict(type='digits')
runtime = dict(work_dir='work_dirs/seed_prune_dmcp')

model = dict(type='gml.SmallCNN', width=16)

algorithm = dict(
    type='DMCP',
    model=model,
    arch_start_training=23,
    arch_train_freq=1,
    arch_sample_num=10,
    mutator=dict(
        type='DMCPMutator',
        num_sample=4,
        sample_width=None,
        arch_sample_type=['max', 'min', 'scheduled_random', 'scheduled_random'],
        width=dict(max=1.0, min=0.1, offset=0.1),
        arch_learning_rate=0.5,
        arch_weight_decay=0.0,
        input_shape=(1, 1, 8, 8),
    ),
)
