"""The int8 report's accuracy: a stated, deterministic rule for tied logits."""

from __future__ import annotations

import torch

from gml_qat.report import top1


class Fixed(torch.nn.Module):
    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, x):
        return self.logits[x.long()]


def test_tied_logits_count_for_the_lowest_class_index():
    logits = torch.tensor([[1.0, 3.0, 3.0, 0.0],   # tie 1/2, label 1 -> correct
                           [2.0, 0.0, 2.0, 2.0],   # tie 0/2/3, label 3 -> wrong (0 wins)
                           [0.0, 0.0, 0.0, 5.0],   # label 3, no tie -> correct
                           [4.0, 4.0, 1.0, 1.0]])  # tie 0/1, label 1 -> wrong
    labels = torch.tensor([1, 3, 3, 1])
    loader = [(torch.arange(2), labels[:2]), (torch.arange(2, 4), labels[2:])]
    accuracy, ties = top1(Fixed(logits), loader)
    assert accuracy == 50.0 and ties == 3
    # same rule however the batches are cut (a topk kernel may break ties differently per shape)
    assert top1(Fixed(logits), [(torch.arange(4), labels)]) == (50.0, 3)
