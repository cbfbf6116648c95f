import math

import pytest
import torch

from stgan.training.config import OptimConfig
from stgan.training.optim import EMA, lr_factor


def curve(steps=12, total=12, **kw):
    cfg = OptimConfig(**kw)
    return [lr_factor(s, cfg, total) for s in range(steps)]


def test_warmup_then_constant():
    assert curve(6, warmup_steps=4) == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]


def test_step_schedule():
    assert curve(7, schedule="step", step_size=3, gamma=0.1) == pytest.approx(
        [1, 1, 1, 0.1, 0.1, 0.1, 0.01]
    )


def test_cosine_schedule_reaches_floor():
    values = curve(11, total=10, schedule="cosine", min_lr_factor=0.1)
    assert values[0] == 1.0 and values[10] == pytest.approx(0.1)
    assert values[5] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 2)))
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_cyclic_schedule_is_triangular():
    assert curve(9, schedule="cyclic", cycle_steps=4) == pytest.approx(
        [0, 0.5, 1, 0.5, 0, 0.5, 1, 0.5, 0]
    )


def test_ema_update():
    model = torch.nn.Linear(2, 1)
    ema = EMA(model, decay=0.9)
    before = ema.model.weight.clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)
    torch.testing.assert_close(ema.model.weight, 0.9 * before + 0.1 * model.weight)
    assert not any(p.requires_grad for p in ema.model.parameters())
