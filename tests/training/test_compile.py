"""train.compile: G and D run compiled through the training step, in one graph each.

Inductor's C++ compile takes minutes on a 2-core CI machine, so the tests compile with the
``aot_eager`` backend: the same Dynamo capture and AOT autograd split as inductor, without
code generation. ``fullgraph=True`` turns any graph break in a forward into an error.
"""

import pytest
import torch

from stgan.training import loop
from stgan.training.config import load_pipeline
from stgan.training.loop import train
from tests.conftest import tiny_pipeline

DEMO_PAIR = {"generator": {"name": "convgru"}, "discriminator": {"name": "dual", "num_frames": 1}}
SHORT = {"window": {"length": 2, "stride": 1}}  # 2 frames: fewer recurrent steps to trace


@pytest.fixture
def strict_compile(monkeypatch):
    """Compile without code generation, and fail on any graph break."""
    monkeypatch.setitem(loop.COMPILE_OPTIONS, "backend", "aot_eager")
    monkeypatch.setitem(loop.COMPILE_OPTIONS, "fullgraph", True)
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def compiled_forwards(network) -> bool:
    return getattr(network.module, "_compiled_call_impl", None) is not None


def last_checkpoint(logdir):
    return sorted((logdir / "checkpoints").glob("ckpt_*.pt"))[-1]


@pytest.mark.slow  # about 15 s of CPU: Dynamo and AOT autograd trace G and D, 2 graphs each
@pytest.mark.usefixtures("strict_compile")
def test_compiled_step_matches_eager(tmp_path):
    """Two steps of the demo's G/D pair compiled: same losses as eager, same checkpoint keys."""
    raw = tiny_pipeline(tmp_path, data=SHORT, model=DEMO_PAIR, train={"steps": 2})
    eager = train(load_pipeline(raw), tmp_path / "eager", device="cpu")
    config = load_pipeline(raw, ("train.compile=true",))
    run = loop.setup(config, tmp_path / "compiled", torch.device("cpu"), loop.Dist(), False)
    assert compiled_forwards(run.g) and compiled_forwards(run.d)
    compiled = train(config, tmp_path / "compiled2", device="cpu")
    for name in ("Loss/D", "Loss/G", "D/real_score", "Grad/G_norm"):
        assert compiled[name] == pytest.approx(eager[name], rel=1e-4, abs=1e-6), name
    saved = [
        torch.load(last_checkpoint(tmp_path / d), weights_only=True) for d in ("eager", "compiled2")
    ]
    assert (
        saved[0]["G"].keys() == saved[1]["G"].keys()
        and saved[0]["D"].keys() == saved[1]["D"].keys()
    )


@pytest.mark.usefixtures("strict_compile")
def test_penalty_keeps_d_eager(tmp_path):
    """R1 differentiates D's gradient (no double backward in compiled graphs): D stays eager."""
    raw = tiny_pipeline(tmp_path, data=SHORT, loss={"r1_gamma": 1.0}, train={"steps": 1})
    config = load_pipeline(raw, ("train.compile=true",))
    run = loop.setup(config, tmp_path / "run", torch.device("cpu"), loop.Dist(), False)
    assert compiled_forwards(run.g) and not compiled_forwards(run.d)
    stats = train(config, tmp_path / "trained", device="cpu")
    assert stats["Loss/penalty"] > 0
