"""Acceptance tests of the synthetic-data solvers against exact solutions and conservation laws
(``docs/data.md`` §3). Small grids, called through each solver function directly."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.integrate import solve_ivp
from scipy.linalg import expm

from harness.data.synth import (advection, burgers, darcy, diffusion_sorption, fitzhugh_nagumo,
                                navier_stokes_1d, reaction_diffusion_1d, shallow_water)
from harness.data.synth.grids import cell_centres, frame_times
from harness.data.synth.ic import minmax_normalise, sample_sine_ic


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ----------------------------------------------------------------------------- shared IC
def test_sine_ic_is_periodic_on_the_true_length():
    ic = sample_sine_ic(rng(), 200, 2.0, k_tot=3, p_window=0.5)
    ends = ic(np.array([-1.0, 1.0]))
    gap = np.abs(ends[:, 0] - ends[:, 1])
    assert gap[~ic.window].max() < 1e-12
    assert gap.max() < 1e-8  # the tanh window is 0 at both ends up to tanh(10) - 1 ≈ 4e-9
    # the documented distribution: abs ~10 %, window 50 % here, wavenumbers multiples of 2π/L
    assert 0.3 < ic.window.mean() < 0.7
    assert np.allclose(np.round(ic.k / np.pi) * np.pi, ic.k)
    assert set(np.unique(ic.sign)) == {-1.0, 1.0}


def test_minmax_normalise_maps_each_sample_to_unit_interval():
    u = minmax_normalise(rng().normal(size=(5, 50)) * 3 + 7)
    assert np.allclose(u.min(axis=1), 0.0) and np.allclose(u.max(axis=1), 1.0)
    assert np.all(minmax_normalise(np.ones((2, 4))) == 0.0)  # flat sample: no division by zero


# ----------------------------------------------------------------------------- advection
def test_advection_is_an_exact_shift():
    nx = 128
    x = cell_centres(0.0, 1.0, nx)
    ic = sample_sine_ic(rng(), 16, 1.0)
    shift = 13  # cells
    t = np.array([0.0, shift / nx / advection.BETA, 1.0 / advection.BETA])  # last: one period
    u = advection.solve(ic, x, t)
    assert np.abs(u[:, 1] - np.roll(u[:, 0], shift, axis=-1)).max() < 1e-12
    assert np.abs(u[:, 2] - u[:, 0]).max() < 1e-12


# ----------------------------------------------------------------------------- Burgers
def cole_hopf(x, t, nu_eff, a=0.5, k=2 * np.pi):
    """Exact periodic Burgers solution from φ = 1 + a e^{-ν k² t} cos(kx), u = -2ν φ_x / φ."""
    e = a * np.exp(-nu_eff * k * k * t)
    return 2 * nu_eff * k * e * np.sin(k * x) / (1 + e * np.cos(k * x))


@pytest.mark.parametrize("nu", [1.0, 0.1])
def test_burgers_matches_cole_hopf(nu):
    x = cell_centres(0.0, 1.0, 64)
    t = frame_times(0.5, 11)
    u = burgers.solve(cole_hopf(x, 0.0, nu / np.pi)[None], t, nu=nu)
    exact = cole_hopf(x[None, :], t[:, None], nu / np.pi)
    assert np.abs(u[0] - exact).max() < 5e-7  # RK4 at the default step (≈7e-8 for ν = 1)


def test_burgers_conserves_mean_and_dissipates_energy():
    x = cell_centres(0.0, 1.0, 256)
    u0 = sample_sine_ic(rng(1), 20, 1.0)(x)
    u = burgers.solve(u0, frame_times(2.0, 21))
    mean = u.mean(axis=-1)
    assert np.abs(mean - mean[:, :1]).max() < 1e-13
    energy = (u * u).mean(axis=-1)
    assert np.all(np.diff(energy, axis=1) <= 1e-14)
    # ν = 1: every non-constant mode has decayed by t = 2; the field is its mean (§1.1)
    assert np.abs(u[:, -1] - mean[:, -1:]).max() < 1e-6
    assert np.all(np.isfinite(u))


# ----------------------------------------------------------------------------- Fisher-KPP
def test_fisher_kpp_constant_ic_follows_the_logistic_ode():
    c = np.array([0.0, 0.05, 0.5, 0.9, 1.0])
    u0 = np.repeat(c[:, None], 32, axis=1)
    t = frame_times(1.0, 101)
    u = reaction_diffusion_1d.solve(u0, t)
    exact = c[:, None] * np.e**t / (1 - c[:, None] + c[:, None] * np.e**t)  # ρ = 1
    assert np.abs(u - exact[:, :, None]).max() < 1e-12


def test_fisher_kpp_without_reaction_is_the_exact_heat_flow():
    x = cell_centres(0.0, 1.0, 64)
    u0 = (0.5 + 0.25 * np.sin(2 * np.pi * x))[None]
    t = frame_times(0.3, 31)
    u = reaction_diffusion_1d.solve(u0, t, rho=0.0)
    exact = 0.5 + 0.25 * np.exp(-0.5 * (2 * np.pi) ** 2 * t)[:, None] * np.sin(2 * np.pi * x)
    assert np.abs(u[0] - exact).max() < 1e-12


def test_fisher_kpp_stays_in_unit_interval_and_grows():
    x = cell_centres(0.0, 1.0, 256)
    u0 = minmax_normalise(sample_sine_ic(rng(2), 20, 1.0)(x))
    u = reaction_diffusion_1d.solve(u0, frame_times(1.0, 101))
    assert u.min() >= 0.0 and u.max() <= 1.0
    mean = u.mean(axis=-1)
    assert np.all(np.diff(mean, axis=1) >= -1e-12)  # the logistic source is non-negative


# ----------------------------------------------------------------------------- diffusion-sorption
def test_retardation_factor_matches_the_documented_values():
    r = diffusion_sorption.retardation(np.array([0.0, 0.1, 1.0]))
    assert np.allclose(r, [13.3, 3.9, 3.16], atol=0.06)


def test_step_times_land_on_frames_with_bounded_ratio():
    t = frame_times(500.0, 11)
    steps = diffusion_sorption.step_times(t)
    assert set(t[1:]).issubset(set(steps)) and steps[-1] == 500.0
    dt = np.diff(np.concatenate([[0.0], steps]))
    ratio = dt[1:] / dt[:-1]
    assert dt.min() > 0 and ratio.max() < 2.0 and ratio.min() > 0.4


def test_diffusion_sorption_bounds_and_inflow():
    c0 = np.array([0.0, 0.1, 0.2])
    t = frame_times(500.0, 11)
    u = diffusion_sorption.solve(c0, 64, t)
    assert u.min() >= 0.0 and u.max() <= 1.0
    assert np.all(u[:, 0] == c0[:, None])  # flat IC
    mass = u.mean(axis=-1)
    assert np.all(np.diff(mass, axis=1) > 0)  # solute enters through the left wall
    assert np.all(u[:, -1, 0] > 0.9)  # the left cell approaches the wall value 1
    assert np.all(np.diff(u[:, -1], axis=-1) < 0)  # and the profile falls away from it


def test_diffusion_sorption_converges_in_time():
    t = frame_times(500.0, 6)
    c0 = np.array([0.05])
    coarse = diffusion_sorption.solve(c0, 64, t)
    fine = diffusion_sorption.solve(c0, 64, t, dt_first=1e-4, growth=1.01, dt_max=0.5)
    assert np.abs(coarse - fine).max() < 1e-3


# ----------------------------------------------------------------------------- 1D CFD
def totals(prim, gamma=navier_stokes_1d.GAMMA):
    rho, v, p = prim
    return np.stack([rho.sum(-1), (rho * v).sum(-1), (p / (gamma - 1) + 0.5 * rho * v * v).sum(-1)])


@pytest.mark.parametrize("eta", [0.0, 0.1])
def test_cfd_conserves_mass_momentum_energy(eta):
    x = cell_centres(-1.0, 1.0, 64)
    rho, v, p = navier_stokes_1d.sample_ic(rng(3), 6, x)
    prim = navier_stokes_1d.solve(rho, v, p, frame_times(0.2, 5), eta=eta, zeta=eta)
    tot = totals(prim)
    drift = np.abs(tot - tot[..., :1]).max(axis=(1, 2)) / np.abs(tot).max(axis=(1, 2))
    assert np.all(drift < 1e-12)
    assert np.all(np.isfinite(prim)) and prim[0].min() > 0 and prim[2].min() > 0


def test_cfd_uniform_state_stays_uniform():
    ones = np.ones((2, 32))
    prim = navier_stokes_1d.solve(2 * ones, 0.5 * ones, 10 * ones, frame_times(0.1, 3))
    assert np.abs(prim[0] - 2).max() < 1e-12 and np.abs(prim[1] - 0.5).max() < 1e-12
    assert np.abs(prim[2] - 10).max() < 1e-10


def test_cfd_viscous_step_conserves_and_damps_kinetic_energy():
    nx = 64
    x = cell_centres(-1.0, 1.0, nx)
    rho = 1.0 + 0.5 * np.sin(np.pi * x)[None]
    v = np.sin(3 * np.pi * x)[None]
    u = np.stack([rho, rho * v, 10.0 / (navier_stokes_1d.GAMMA - 1) + 0.5 * rho * v * v])
    out = navier_stokes_1d.viscous_step(u, 2.0 / nx, 0.2333, 1e-2)
    assert np.abs(out.sum(-1) - u.sum(-1)).max() < 1e-12 * np.abs(u.sum(-1)).max()
    ke = lambda q: (0.5 * q[1] ** 2 / q[0]).sum()  # noqa: E731
    assert ke(out) < ke(u)


def test_cfd_implicit_viscosity_agrees_with_explicit_reference():
    x = cell_centres(-1.0, 1.0, 32)
    rho, v, p = navier_stokes_1d.sample_ic(rng(4), 4, x)
    t = frame_times(0.2, 3)
    split = navier_stokes_1d.solve(rho, v, p, t)
    ref = navier_stokes_1d.solve(rho, v, p, t, implicit_viscosity=False, cfl=0.3)
    scale = np.abs(ref).max(axis=(1, 2, 3), keepdims=True)
    assert (np.abs(split - ref) / scale).max() < 3e-2  # ≈1.3e-2: splitting + reference error


# ----------------------------------------------------------------------------- Darcy
def test_darcy_matrix_is_spd_and_the_solve_has_tiny_residual():
    a = darcy.coefficient(rng(5), 3, 12)
    assert set(np.unique(a)) <= {darcy.A_LOW, darcy.A_HIGH}
    for face in ("arithmetic", "harmonic"):
        m = darcy.assemble(a[0], face)
        assert abs(m - m.T).max() == 0.0
        assert np.linalg.eigvalsh(m.toarray()).min() > 0
    u = darcy.solve(a)
    for s in range(3):
        m = darcy.assemble(a[s])
        b = np.full(a[s].size, darcy.BETA)
        assert np.abs(m @ u[s].ravel() - b).max() / np.abs(b).max() < 1e-10
    assert u.min() > 0  # β > 0 with zero walls: the solution is positive (maximum principle)


def test_darcy_constant_coefficient_matches_the_5_point_laplacian():
    def lap(n):  # 1D Dirichlet FV Laplacian on [0, 1] with zero ghosts
        return sp.diags([2 * np.ones(n), -np.ones(n - 1), -np.ones(n - 1)], [0, 1, -1]) * n * n

    nx, ny = 10, 7
    expected = sp.kron(lap(nx), sp.identity(ny)) + sp.kron(sp.identity(nx), lap(ny))
    assert abs(darcy.assemble(np.ones((nx, ny))) - expected).max() < 1e-9


# ----------------------------------------------------------------------------- shallow water
def test_shallow_water_volume_symmetry_and_quadrant_reduction():
    nx = 32
    x = cell_centres(-2.5, 2.5, nx)
    r0 = np.array([0.4, 0.65])
    t = frame_times(0.3, 7)
    h = shallow_water.solve(shallow_water.dam_break(r0, x), x[1] - x[0], t)
    assert np.all(np.isfinite(h)) and h.min() > 0
    # mirror and diagonal symmetry of the radial problem hold to round-off
    assert np.abs(h - h[..., ::-1, :]).max() < 1e-12
    assert np.abs(h - h[..., ::-1]).max() < 1e-12
    assert np.abs(h - h.swapaxes(-1, -2)).max() < 1e-12
    # the generator's quadrant solve reproduces the full-grid solve
    assert np.abs(shallow_water.solve_quadrant(r0, nx, t) - h).max() < 1e-12
    # water volume is conserved while the boundary cells are still untouched
    edge = np.concatenate([h[..., 0, :], h[..., -1, :], h[..., 0], h[..., -1]], axis=-1)
    quiet = np.all(np.abs(edge - 1.0) < 1e-13, axis=(0, 2))
    assert quiet[:4].all()  # up to t = 0.15 on this coarse grid
    vol = h.sum(axis=(-1, -2))
    assert np.abs(vol - vol[:, :1])[:, quiet].max() < 1e-13 * vol.max()


def test_shallow_water_is_radially_symmetric():
    nx = 48
    x = cell_centres(-2.5, 2.5, nx)
    h = shallow_water.solve(shallow_water.dam_break(np.array([0.6]), x), x[1] - x[0],
                            frame_times(0.5, 3))[0, -1]
    r = np.hypot(x[:, None], x[None, :])
    # the depth along the diagonal, interpolated from the profile along the axis, agrees to a
    # few % of the dam height (1) on this coarse Cartesian grid (measured: 0.017 max)
    axis_r, axis_h = r[nx // 2:, nx // 2], h[nx // 2:, nx // 2]
    diag = np.arange(nx // 2, nx)
    interp = np.interp(r[diag, diag], axis_r, axis_h)
    assert np.abs(interp - h[diag, diag]).max() < 0.05
    assert np.abs(interp - h[diag, diag]).mean() < 0.01


# ----------------------------------------------------------------------------- FitzHugh-Nagumo
def fhn_ode(c, t):
    def f(_, y):
        return [y[0] - y[0] ** 3 - fitzhugh_nagumo.K - y[1], y[0] - y[1]]
    return solve_ivp(f, (0, t[-1]), c, t_eval=t, rtol=1e-11, atol=1e-12).y.T  # (T, 2)


@pytest.mark.parametrize("dt,tol", [(fitzhugh_nagumo.DT, 2e-3), (0.005, 1e-4)])
def test_fhn_constant_ic_reproduces_the_homogeneous_ode(dt, tol):
    c = np.array([[-1.5, 0.3], [0.2, -0.4], [2.5, 1.0]])
    t = frame_times(5.0, 21)
    u0 = np.ones((3, 6, 6)) * c[:, 0, None, None]
    v0 = np.ones((3, 6, 6)) * c[:, 1, None, None]
    out = fitzhugh_nagumo.solve(u0, v0, 2.0 / 6, t, dt=dt)
    assert out.std(axis=(2, 3)).max() < 1e-12  # stays spatially constant (no-flux walls)
    for s in range(3):
        assert np.abs(out[s, :, 0, 0] - fhn_ode(c[s], t)).max() < tol


def test_fhn_dct_diagonalises_the_no_flux_laplacian():
    n, dx = 8, 0.25
    lap = (np.diag(-2 * np.ones(n)) + np.diag(np.ones(n - 1), 1) + np.diag(np.ones(n - 1), -1))
    lap[0, 0] = lap[-1, -1] = -1  # no flux: the outer neighbour is dropped
    lap /= dx * dx
    eig = np.sort(np.linalg.eigvalsh(lap))
    assert np.allclose(np.sort(fitzhugh_nagumo.neumann_eigenvalues(n, dx)), eig)


def test_fhn_propagator_matches_scipy_expm():
    e = fitzhugh_nagumo.linear_propagator(6, 6, 0.3, 0.05)
    lam = fitzhugh_nagumo.neumann_eigenvalues(6, 0.3)
    for i, j in [(0, 0), (1, 4), (5, 5)]:
        m = np.array([[fitzhugh_nagumo.D_U * (lam[i] + lam[j]), -1.0],
                      [1.0, fitzhugh_nagumo.D_V * (lam[i] + lam[j]) - 1.0]])
        assert np.abs(expm(0.05 * m) - e[i, j]).max() < 1e-13


def test_fhn_cubic_flow_is_exact():
    u0 = np.array([-3.0, -0.5, 0.0, 0.7, 4.0])
    exact = [solve_ivp(lambda _, y: y - y**3, (0, 0.3), [c], rtol=1e-12, atol=1e-14).y[0, -1]
             for c in u0]
    assert np.allclose(fitzhugh_nagumo.cubic_flow(u0, 0.3), exact, atol=1e-10)
