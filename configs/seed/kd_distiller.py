# The seed document's knowledge-distillation example (KD section): `algorithm` of type
# ImageClassifierDistiller, the student as a top-level `model` helper, one teacher given as a dict
# (a list for several), `pretrained=None` and `use_meal=False` as written there. `ckpt_path` may be
# empty, as in the seed: gml then warns that the teacher is randomly initialised.
# Swapped for digits: gml.SmallCNN student and teacher instead of mmcls ResNets.
#   gml config check configs/seed/kd_distiller.py
_base_ = ['./_base_/digits_cnn.py']

runtime = dict(work_dir='work_dirs/seed_kd_distiller')

model = dict(type='gml.SmallCNN', width=4)
teacher = dict(type='gml.SmallCNN', width=16)

algorithm = dict(
    type='ImageClassifierDistiller',
    model=model,
    use_meal=False,
    pretrained=None,
    distiller=dict(
        type='TeacherDistiller',
        distill_cfg=dict(
            teacher=dict(
                ckpt_path=None,  # e.g. 'work_dirs/kd_teacher/best.pth'
                model=teacher,
                distill_head_cfg=[
                    dict(student_module='head.fc',
                         teacher_module='head.fc',
                         head=dict(type='BaseDistillationHead',
                                   name='kd',
                                   loss=dict(type='DistillKLDivLoss', tau=4.0, loss_weight=1.0))),
                ]))))
