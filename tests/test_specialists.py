"""The specialist models (specialists/): shapes on the tasks' grids, gradients, a tiny overfit."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from specialists import FieldModel, UNet


def _smooth_fields(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """A few low Fourier modes per sample: fields a small model can map in a few steps."""
    axes = [np.linspace(0, 2 * np.pi, n, endpoint=False) for n in shape[2:]]
    phase = sum(np.meshgrid(*axes, indexing="ij"))
    out = np.zeros(shape)
    for k in (1, 2, 3):
        out += rng.normal(size=shape[:2] + (1,) * (len(shape) - 2)) * np.sin(k * phase)
    return out.astype(np.float32)


@pytest.mark.parametrize("grid", [(16,), (24,), (7,), (8, 8), (12, 20), (5, 9)])
def test_unet_keeps_the_grid_and_every_parameter_gets_a_gradient(grid):
    net = UNet(2, 3, dim=len(grid), features=4, levels=3)
    x = torch.randn(2, 2, *grid)
    out = net(x)
    assert out.shape == (2, 3, *grid)
    out.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_unet_rejects_a_3d_grid():
    with pytest.raises(ValueError, match="dim must be 1 or 2"):
        UNet(1, 1, dim=3)


def test_field_model_resamples_the_input_to_the_target_grid_and_standardises():
    rng = np.random.default_rng(0)
    x = _smooth_fields(rng, (6, 1, 32)) * 5 + 3
    # the target on a grid half as fine, over the same domain: its cell centres lie midway
    # between two of the input's, where linear interpolation is the pair's mean
    y = (x[..., 0::2] + x[..., 1::2]) / 2 * 10 - 4
    model = FieldModel(torch.nn.Identity(), x, y)
    out = model(torch.as_tensor(x)).detach().numpy()
    assert out.shape == y.shape
    # identity net: the output is the standardised input, resampled and put in y's units
    assert np.corrcoef(out.ravel(), y.ravel())[0, 1] > 0.9999
    assert out.mean() == pytest.approx(y.mean(), rel=0.05)
    assert out.std() == pytest.approx(y.std(), rel=0.1)


def test_field_model_leaves_a_constant_channel_finite():
    x = np.ones((4, 1, 8), np.float32)                # diffusion-sorption's u(t=0) is constant
    y = np.random.default_rng(0).normal(size=(4, 1, 8)).astype(np.float32)
    out = FieldModel(torch.nn.Identity(), x, y)(torch.as_tensor(x))
    assert torch.isfinite(out).all()


def test_field_model_names_a_non_field_target():
    with pytest.raises(ValueError, match=r"must both be \(N, C, L\) or \(N, C, H, W\)"):
        FieldModel(torch.nn.Identity(), np.zeros((4, 1, 8), np.float32), np.zeros(4, np.int64))


@pytest.mark.parametrize("shape", [(12, 1, 32), (12, 1, 12, 12)])
def test_unet_overfits_a_tiny_shift_map(shape):
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    x = _smooth_fields(rng, shape)
    y = np.roll(x, 2, axis=-1) * 2 + 1
    model = FieldModel(UNet(1, 1, dim=len(shape) - 2, features=8, levels=2), x, y)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)

    def nrmse() -> float:
        with torch.no_grad():
            err = (model(xt) - yt).flatten(1).norm(dim=1) / yt.flatten(1).norm(dim=1)
        return float(err.mean())

    before = nrmse()
    for _ in range(60):
        loss = (model(xt) - yt).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert nrmse() < 0.25 * before


def test_field_model_state_dict_round_trips_with_a_neuraloperator_fno():
    """neuraloperator's models put a ``_metadata`` dict into any state dict they are part of; the
    harness copies and checkpoints state dicts as tensors and reloads them strictly."""
    neuralop = pytest.importorskip("neuralop.models", reason="neuraloperator not installed "
                                   "(a project dependency: pip install -e .)")
    x = _smooth_fields(np.random.default_rng(2), (4, 1, 16, 16))
    torch.manual_seed(0)
    first = FieldModel(neuralop.FNO(n_modes=(4, 4), in_channels=1, out_channels=1,
                                    hidden_channels=4, n_layers=1), x, x)
    state = first.state_dict()
    assert state and all(isinstance(v, torch.Tensor) for v in state.values())
    torch.manual_seed(1)
    second = FieldModel(neuralop.FNO(n_modes=(4, 4), in_channels=1, out_channels=1,
                                     hidden_channels=4, n_layers=1), x, x)
    second.load_state_dict(state)                     # strict
    xt = torch.as_tensor(x)
    assert torch.equal(first(xt), second(xt))


def test_the_specialists_run_only_when_named(tmp_path):
    """fno and unet cost more per cell than the default CPU run's budget allows: a sweep without
    --methods leaves them out, --methods runs them, and harness.list says so."""
    from harness.list import _methods
    from harness.sweep.cli import build_parser
    from harness.sweep.planning import plan_sweep

    base = ["--tasks", "advection,darcy", "--profile", "smoke", "--runs-dir", str(tmp_path)]
    default = {m.name for m in plan_sweep(build_parser().parse_args(base)).methods}
    assert "nft" in default and "mean" in default
    assert not default & {"fno", "unet"}
    named = plan_sweep(build_parser().parse_args([*base, "--methods", "unet,nft"]))
    assert [m.name for m in named.methods] == ["unet", "nft"]
    assert {("advection", "unet"), ("darcy", "unet")} <= {(t.name, m.name)
                                                          for t, m in named.planned()}
    unet_line = next(line for line in _methods(None) if line.startswith("unet "))
    assert "named only" in unet_line
