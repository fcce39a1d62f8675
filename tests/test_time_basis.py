"""Time at real speed: the octave basis sized to the video's duration, in both backends."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from lmf_gs.config import Config, ModelConfig, NerfConfig
from lmf_gs.data.scene import Scene
from lmf_gs.errors import DataError
from lmf_gs.model import LayeredGaussians
from lmf_gs.model.deform import Deformation
from lmf_gs.model.layered import SceneGeometry
from lmf_gs.model.time_latent import (
    MAX_OCTAVES,
    MIN_OCTAVES,
    TimeLatent,
    resolve_time_freqs,
    shortest_period_s,
    time_frequencies,
    time_octaves,
)
from lmf_gs.nerf.model import NeuralDiff

pytestmark = pytest.mark.usefixtures("one_thread")

# P01_01 as registered by EPIC Fields: frame numbers 401 .. 99,134 at 50 fps, 4,645 frames
P01_01 = np.linspace(401, 99_134, 4_645).round()


def p01_01_times() -> tuple[np.ndarray, torch.Tensor]:
    """Seconds since the first frame ``[N]`` and normalised times ``[N]`` of P01_01's axis."""
    s = (P01_01 - P01_01[0]) / 50.0
    return s, torch.tensor(2 * s / s[-1] - 1, dtype=torch.float32)


@pytest.mark.parametrize(("duration_s", "octaves", "period_s"), [
    (6.4, MIN_OCTAVES, 0.2),  # a 100-frame video of the default synthetic generator
    (49.9, 6, 1.56),  # 100 frames at stride 25
    (300.0, 8, 2.34),  # 5 minutes
    (1974.66, 11, 1.93),  # P01_01, 33 minutes
])
def test_octave_count_follows_the_duration(duration_s, octaves, period_s):
    n = time_octaves(duration_s)
    assert n == octaves
    assert shortest_period_s(time_frequencies("octave", n), duration_s) == pytest.approx(
        period_s, abs=0.01)


def test_octave_count_bounds_and_overrides():
    periods = [shortest_period_s(time_frequencies("octave", time_octaves(d)), d)
               for d in np.geomspace(60, 3600, 40)]
    assert all(2 / math.sqrt(2) - 1e-6 <= p <= 2 * math.sqrt(2) + 1e-6 for p in periods)
    assert time_octaves(36_000.0) == MAX_OCTAVES and time_octaves(0.0) == MIN_OCTAVES
    assert time_octaves(None) == 10  # duration unknown: NeuralDiff's 10 octaves
    assert time_octaves(120.0, period_s=0.5) == time_octaves(480.0)
    assert resolve_time_freqs("octave", 3, 1974.66) == 3  # an int forces the count
    assert resolve_time_freqs("linear", None, 1974.66) == 10  # lmf-gs before the octaves
    torch.testing.assert_close(time_frequencies("linear", 3), math.pi * torch.tensor([1., 2, 3]))
    torch.testing.assert_close(time_frequencies("octave", 3), math.pi * torch.tensor([1., 2, 4]))


def _fit(basis: str, n_freqs: int, t: torch.Tensor, y: torch.Tensor, steps: int = 400) -> float:
    """Residual variance / signal variance of z_t = phi(t) W (D = 17) read out by the
    deformation MLP (hidden 64, as configs/gs.yaml), both trained with Adam."""
    torch.manual_seed(0)
    latent = TimeLatent(time_frequencies(basis, n_freqs), 17)
    net = Deformation(17, 0, 64, {"y": 1})
    torch.nn.init.normal_(net.net[-1].weight, std=0.01)  # zero-initialised in the model
    opt = torch.optim.Adam([*latent.parameters(), *net.parameters()], lr=1e-2)
    for _ in range(steps):
        loss = (net(latent(t), torch.zeros(1, 0))["y"][:, 0, 0] - y).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss.item() / y.var().item()


def test_a_two_second_period_is_resolved_on_a_33_minute_axis():
    s, t = p01_01_times()
    L = time_octaves(s[-1])
    # a linear readout of phi(t): exact for the basis's own shortest period (~1.93 s) ...
    top = torch.tensor(np.cos(2 * np.pi * s / shortest_period_s(
        time_frequencies("octave", L), s[-1]) + 0.3), dtype=torch.float32)
    for basis, n, expected in [("octave", L, 0.0), ("linear", 10, 1.0)]:
        phi = TimeLatent(time_frequencies(basis, n), 17).basis(t).double()
        coef = torch.linalg.lstsq(phi, top.double()[:, None]).solution
        resid = ((phi @ coef)[:, 0] - top).pow(2).mean() / top.var()
        assert float(resid) == pytest.approx(expected, abs=0.01)
    # ... and the MLP readout fits an exactly 2 s period (987 cycles, 4.7 frames per cycle):
    # measured 0.011 of the variance with the octaves, 0.9998 with the old basis
    y = torch.tensor(np.sin(2 * np.pi * s / 2.0), dtype=torch.float32)
    assert _fit("octave", L, t, y) < 0.05
    assert _fit("linear", 10, t, y) > 0.95


def test_frames_five_seconds_apart_have_distinct_time_features():
    s, t = p01_01_times()
    t5 = torch.tensor(2 * (s + 5.0) / s[-1] - 1, dtype=torch.float32)
    rel = {}
    for basis, n in [("octave", time_octaves(s[-1])), ("linear", 10)]:
        lat = TimeLatent(time_frequencies(basis, n), 17)
        a, b = lat.basis(t), lat.basis(t5)
        rel[basis] = float(((b - a).norm(dim=1) / a.norm(dim=1)).mean())
    # (measured: ~1.0 with the octaves, 0.094 with the old basis)
    assert rel["linear"] < 0.1 < 0.8 < rel["octave"]


def _geometry(duration_s: float | None) -> SceneGeometry:
    rng = np.random.default_rng(0)
    K = np.array([[20.0, 0, 12], [0, 20.0, 8], [0, 0, 1]])
    pts = rng.normal(size=(200, 3)) * [1.0, 0.6, 0.3] + [0, 0, 3.0]
    return SceneGeometry(pts, rng.uniform(size=(200, 3)), 3.0, K, 24, 16, duration_s)


SMALL = dict(n_static=50, n_semistatic=20, n_dynamic=20, sh_degree=0, hidden=8, feature_dim=2)


def test_gaussian_model_sizes_and_reloads_its_time_basis():
    model = LayeredGaussians.initialise(ModelConfig(**SMALL), _geometry(1974.66))
    for layer in ("semistatic", "dynamic"):
        torch.testing.assert_close(model.time[layer].freqs, time_frequencies("octave", 11))
    forced = LayeredGaussians.initialise(ModelConfig(**SMALL, time_freqs=3), _geometry(1974.66))
    assert forced.time["dynamic"].n_freqs == 3
    linear = LayeredGaussians.initialise(ModelConfig(**SMALL, time_basis="linear"), _geometry(60))
    torch.testing.assert_close(linear.time["dynamic"].freqs, time_frequencies("linear", 10))
    # the state alone decides the basis, whatever the config given to the rebuild
    state = model.state_dict()
    again = LayeredGaussians.from_state_dict(ModelConfig(**SMALL, time_freqs=2), state)
    t = torch.linspace(-1, 1, 7)
    for layer in ("semistatic", "dynamic"):
        torch.testing.assert_close(again.time[layer](t), model.time[layer](t))


def test_nerf_sizes_its_time_basis_from_the_scene_and_reloads_it(tiny):
    tiny_cfg = NerfConfig(width=8, depth=2, skips=(), appearance_dim=2)
    scene = Scene(tiny.vid, Config().data.model_copy(update={"root": tiny.root, "fps": 0.01}))
    model = NeuralDiff.initialise(tiny_cfg, scene, list(range(len(scene))))
    L = time_octaves(scene.duration_s)
    assert scene.duration_s > 1000 and L > MIN_OCTAVES
    assert model.time["dynamic"].n_freqs == L
    again = NeuralDiff.from_state_dict(tiny_cfg.model_copy(update={"time_freqs": 1}),
                                       model.state_dict())
    torch.testing.assert_close(again.time["semistatic"].freqs, time_frequencies("octave", L))


def test_scene_duration_from_data_fps_or_the_camera_file(tiny):
    data = Config().data.model_copy(update={"root": tiny.root})
    scene = Scene(tiny.vid, data)
    span = scene.frame_numbers[-1] - scene.frame_numbers[0]
    assert scene.fps == 50 and scene.duration_s == pytest.approx(span / 50)
    assert Scene(tiny.vid, data.model_copy(update={"fps": 25})).duration_s == pytest.approx(
        span / 25)
    path = tiny.root / "epic_fields" / f"{tiny.vid}.json"
    raw = json.loads(path.read_text())
    path.write_text(json.dumps({**raw, "fps": 60}))  # the camera file's key wins
    assert Scene(tiny.vid, data.model_copy(update={"fps": 25})).fps == 60
    for bad in (0, -5, "fast", True):
        path.write_text(json.dumps({**raw, "fps": bad}))
        with pytest.raises(DataError, match=r"'fps' must be a positive number"):
            Scene(tiny.vid, data)
    path.write_text(json.dumps(raw))
