# The seed document's BigNAS example (NAS section), written the way it is there: the supernet is a
# top-level `model` helper that `algorithm` uses, the head keeps `topk=(1, 5)`, the mutator is the
# seed's spelling `StateslessMutator` and `search_eval_cfg` is its own top-level helper.
# Swapped for digits: a three-stage MobileNetV3Slice with small channel choices, 12x12 inputs,
# and the losses without the `mmcls.` scope (gml's head computes label smoothing itself).
#   gml config check configs/seed/nas_bignas.py && gml run configs/seed/nas_bignas.py
_base_ = ['./_base_/digits_cnn.py']

data = dict(type='digits', resize=12)
runtime = dict(work_dir='work_dirs/seed_nas_bignas')

model = dict(
    type='gml.ImageClassifierSearch',
    backbone=dict(
        type='gml.MobileNetV3Slice',
        stem_stride=1,
        strides=[1, 2, 2],
        use_se=[False, True, True],
        acts=['relu', 'hswish', 'hswish'],
        search_space=dict(
            MB_stage_blocks=[
                1,
                dict(type='Categorical', data=[1, 2], default=1),
                dict(type='Categorical', data=[1, 2], default=2),
                dict(type='Categorical', data=[1, 2], default=2),
                1,
            ],
            MB_kernel_size=[3, dict(type='Categorical', data=[3, 5], default=3),
                            dict(type='Categorical', data=[3, 5], default=3),
                            dict(type='Categorical', data=[3, 5], default=3), 1],
            MB_expand_ratio=[1, dict(type='Categorical', data=[2, 3], default=3),
                             dict(type='Categorical', data=[2, 3], default=3),
                             dict(type='Categorical', data=[2, 3], default=3), 3],
            MB_out_channels=[
                dict(type='Categorical', data=[8, 12], default=8),  # first conv
                dict(type='Int', lower=8, upper=17, step=8, default=16),
                dict(type='Int', lower=16, upper=25, step=8, default=16),
                dict(type='Int', lower=24, upper=33, step=8, default=32),
                dict(type='Categorical', data=[48, 64], default=64),  # last conv
            ])),
    head=dict(
        type='gml.LinearClsHeadV2',
        distiller_mode='soft',
        label_smooth_val=0.1,
        topk=(1, 5),
    ),
    resize_process=dict(type='ResizeSlice', resolution=dict(type='Int', lower=8, upper=13, step=4, default=12)),
    connect_head=dict(in_channels='backbone.feat_dim'),
)

search_eval_cfg = dict(
    type='DynamicDistEvalHook',
    evaluator=dict(type='NaiveEvaluator', units='M', default_shape=(1, 1, 12, 12)),
    gpu_collect=True,
    bn_stats_calib_kwargs=dict(num_iters=4, sync_params=True),
)

algorithm = dict(
    type='gml.BigNAS',
    model=model,
    strategy='sandwish4',
    drop_ratio=0.2,
    drop_path_ratio=0.2,
    mutator=dict(type='gml.StateslessMutator'),
    search_eval_cfg=search_eval_cfg,
)
