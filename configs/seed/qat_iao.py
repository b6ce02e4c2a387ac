# The seed document's QAT example (IAO): `_base_` is the model's own training config, `algorithm`
# wraps the same `model` with a TorchDefaultQuantizer that names the first and the last quantized
# layers and the modules to fuse (`fuse_config`: a module name -> lists of its child modules).
# Swapped for digits: gml.SmallCNN's layer names instead of ResNet-18's.
#   gml config check configs/seed/qat_iao.py
_base_ = ['./_base_/digits_cnn.py']

runtime = dict(work_dir='work_dirs/seed_qat_iao')
train = dict(epochs=2, lr=0.01)

model = dict(type='gml.SmallCNN', width=16)

algorithm = dict(
    type='IAO',
    model=model,
    quantizer=dict(
        type='TorchDefaultQuantizer',
        backend='fbgemm',
        input_layer='backbone.conv1',
        output_layer='backbone.layer4',
        fuse_config={
            'backbone': [['conv1', 'bn1', 'relu']],
            'backbone.layer1.0': [['conv', 'bn', 'relu']],
            'backbone.layer2.0': [['conv', 'bn', 'relu']],
            'backbone.layer3.0': [['conv', 'bn', 'relu']],
            'backbone.layer4.0': [['conv', 'bn', 'relu']],
        },
    ),
)
