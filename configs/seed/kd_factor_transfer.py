# The seed document's factor-transfer example (KD section): a distillation head with a connector on
# each side, and a `pretrain_criterion` that pre-trains its connector before the student's schedule.
# The seed allows it on either side; here the teacher's Paraphraser is pre-trained.
# Swapped for digits: gml.SmallCNN student and teacher, their last stage as the supervised layer.
#   gml config check configs/seed/kd_factor_transfer.py
_base_ = ['./_base_/digits_cnn.py']

runtime = dict(work_dir='work_dirs/seed_kd_factor_transfer')

student = dict(type='gml.SmallCNN', width=4)
teacher = dict(type='gml.SmallCNN', width=16)

ft_head = dict(
    type='BaseDistillationHead',
    name='ft',
    stu_connector=dict(type='Translator'),
    tea_connector=dict(type='Paraphraser', rate=0.5, pretrain_criterion=dict(type='MSELoss'), pretrain_epochs=1),
    loss=dict(type='FTLoss', p=1.0, loss_weight=1.0),
)

algorithm = dict(
    type='TeacherStudentDistillation',
    model=student,
    distiller=dict(
        type='TeacherDistiller',
        distill_cfg=dict(
            teacher=[
                dict(ckpt_path=None,
                     model=teacher,
                     distill_head_cfg=[
                         dict(student_module='backbone.layer4', teacher_module='backbone.layer4', head=ft_head),
                     ]),
            ])))
