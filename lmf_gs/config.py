"""Typed configuration: pydantic models loaded from YAML in ``configs/``, with ``--set`` overrides.

Every run writes its resolved config (``config.yaml``) next to its outputs.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationError,
    field_validator,
)

from lmf_gs.errors import LmfError

# the named configs: package data of lmf_gs (``lmf_gs/configs`` links to the top-level
# ``configs/`` of the source tree), found alike in a checkout and after a non-editable install
CONFIG_DIR = Path(str(resources.files("lmf_gs") / "configs"))
MOTION_TYPES = ("dynamic", "semistatic", "dynamic_semistatic")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(Section):
    """Where the data of a video lives. Path templates take ``{root}``, ``{vid}`` and ``{pid}``
    (the participant, e.g. ``P03`` for ``P03_04``); the defaults are the canonical layout."""

    root: Path = Path("data")
    epic_fields: str = "{root}/epic_fields/{vid}.json"
    # a folder of frame_XXXXXXXXXX.jpg, or an EK100 tar; if the folder does not exist, the same path
    # with ".tar" appended is tried (so both canonical forms work with the default)
    frames: str = "{root}/frames/{vid}"
    motion_masks: str = "{root}/motion_masks/{vid}"
    udos_split: str = "{root}/udos/split/test.json"
    udos_annotations: str = "{root}/udos/annotations"
    mg_cache: str = "{root}/udos/cache/task2-2d/test/soft_scores/{vid}"
    # frame rate of the frame numbers (EPIC-KITCHENS: 50); an ``fps`` key in the EPIC Fields
    # JSON wins. Gives the video's duration in seconds, from which the time basis is sized.
    fps: float = Field(50.0, gt=0)
    # integer downscaling of frames and masks (2: 456x256 -> 228x128), box filter
    downscale: int = 1
    # keep decoded frames and motion masks in memory (uint8 at the working resolution), at most
    # cache_mb MiB, least recently used out first. 3072 holds a whole video of up to ~6,900
    # frames at 456x256 with a mask per frame (467 kB per frame: P01_01's 4,645 take 2.02 GiB;
    # at downscale 2, 117 kB per frame)
    cache_frames: bool = True
    cache_mb: int = 3072

    @field_validator("downscale")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v < 1:
            raise ValueError("must be >= 1")
        return v

    @field_validator("cache_mb")
    @classmethod
    def _non_negative(cls, v: int) -> int:
        if v < 0:
            raise ValueError("must be >= 0")
        return v


class EvalConfig(Section):
    """UDOS evaluation."""

    split: Literal["within_action", "outside_action", "outside_action_easy"] = "within_action"


class RenderConfig(Section):
    """Rasteriser backend: "auto" = gsplat on CUDA, else the pure-PyTorch one."""

    backend: Literal["auto", "torch", "gsplat"] = "auto"
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")  # auto: cuda if available


class ModelConfig(Section):
    """Layered Gaussians: static (world), semi-static (world), dynamic (camera frame)."""

    sh_degree: int = 3  # static colour; non-static sets use degree 0 + a time-varying offset
    n_static: int = 30_000  # initial counts (static/semi-static from the EPIC points)
    n_semistatic: int = 10_000
    n_dynamic: int = 10_000
    init_opacity: float = 0.1
    init_opacity_nonstatic: float = 0.01
    # initial size of a static Gaussian: "sfm" = the k-NN distance of the SfM point it is drawn
    # from; "samples" = k-NN among the drawn (jittered) Gaussians, which makes the copies of a
    # sparse cloud specks (DAVIS soapbox, 917 points for 8,000 Gaussians: initial static
    # coverage 4% of the image, against 31% on a synthetic kitchen)
    static_init_scale: Literal["sfm", "samples"] = "sfm"
    # dynamic set: a camera-frame frustum volume, depth as a fraction of the median point depth
    dynamic_depth: tuple[float, float] = (0.1, 0.6)
    # near plane as a fraction of the scene scale (median SfM point depth): COLMAP's units are
    # arbitrary, so a fixed 0.01 could cull a whole scene or nothing
    near: float = Field(0.01, gt=0)
    # Fourier time basis phi(t) (1 + 2 L features, see model/time_latent.py): "octave" =
    # NeuralDiff's pi 2^k, k < L, with L derived from the video's duration so that the shortest
    # period is about time_period_s seconds; "linear" = k pi, k = 1..10 (lmf-gs before); an int
    # time_freqs forces L. The resolved basis is stored in the checkpoint.
    time_basis: Literal["octave", "linear"] = "octave"
    time_freqs: int | None = Field(None, ge=1)
    time_period_s: float = Field(2.0, gt=0)
    latent_dim: int = 17  # z_t = phi(t) W (NeuralDiff D = 17)
    feature_dim: int = 16  # per-Gaussian feature fed to the deformation networks
    # sets with a per-Gaussian linear readout of z_t added to their network's offsets; the
    # semi-static set is left without: with it, it would model hands by blinking in time
    readout: tuple[str, ...] = ("dynamic",)
    hidden: int = 64
    semistatic_motion: bool = False  # let semi-static Gaussians also move (else opacity/colour)
    # floor of the uncertainty B (Eq. 4). NeuralDiff's 0.03 weights a static pixel's squared
    # error 1 / (2 B^2) = 556x, so every residual the static set cannot fit (exposure, SfM
    # error, parallax on real footage) pulls non-static content in; 0.1 (50x) keeps the
    # non-static layers on what moves (README, "Layers on real footage")
    beta_min: float = 0.1
    beta_init: float = 0.1
    # NeuralDiff's code gives only the semi-static and dynamic layers an uncertainty: a pixel
    # can be discounted only by putting (penalised) non-static content on it
    static_uncertainty: bool = False
    # "affine": the static colours go through a per-frame 3x3 + bias colour transform, smooth in
    # time (the time basis; identity at initialisation), for exposure and white-balance changes
    appearance: Literal["none", "affine"] = "none"


class TrainConfig(Section):
    """Gaussian training. ``epochs`` (views per training frame), when set, gives the iterations
    (``epochs x frames / batch_size``); the schedule fields below that are fractions in (0, 1)
    are fractions of the run, integers are iterations."""

    iters: PositiveInt = 30_000
    epochs: float | None = Field(None, gt=0)
    batch_size: PositiveInt = 1  # cameras (frames) per step
    workers: int = Field(2, ge=0)  # threads decoding upcoming frames ahead (0: none)
    seed: int = 0
    holdout_every: int = 10  # every k-th registered frame (not in the UDOS split) is held out
    lr_means: float = 1.6e-4  # times the scene scale, decayed x0.01 over training
    lr_scales: float = 5e-3
    lr_quats: float = 1e-3
    lr_opacities: float = 5e-2
    lr_colors: float = 2.5e-3
    lr_betas: float = 5e-3
    lr_features: float = 5e-3
    lr_readout: float = 3e-4  # the readout's offsets scale with |z_t| ~ 1: keep it slow
    lr_networks: float = 1e-3  # deformation MLPs and time latents, cosine-decayed
    lr_appearance: float = 2e-3  # the static colour transform (model.appearance), decayed alike
    # weight of the mean non-static layer mask (NeuralDiff's term is 0.01 x mean density); on
    # Gaussians 0.05 keeps the semi-static set off the static background (synthetic SYN_01:
    # semi-static mask on background 0.13 -> 0.08, base mAP SS 16.5 -> 22.2, Dyn+SS 60.3 -> 70.8)
    sparsity: float = 0.05
    # layered motion fusion during training (PMF/NMF of `fusion`) on every training frame that
    # has a 2D motion mask (frames without one get none): the layers start from the masks and TR
    # corrects them (README, "Layers on real footage"). The isolated masks it needs come from
    # the same pass on the CPU rasteriser (gsplat renders them again): a step with a mask costs
    # ~1.5x one without on the CPU
    fusion: Literal["none", "pmf", "nmf", "lmf"] = "lmf"
    # the first iterations render only the world-frame sets, so that the scene's geometry is in
    # place before the camera-frame dynamic set can explain any of it
    warmup: int | float = 3_000
    warmup_layers: tuple[str, ...] = ("static", "semistatic")
    densify_from: int | float = 500
    densify_until: int | float = 15_000
    densify_every: PositiveInt = 100
    reset_opacity_every: int | float = 3_000
    grad_threshold: float = 2e-4  # mean 2D-mean gradient norm (NDC-scaled, as gsplat)
    # the uncertainty-weighted loss scales gradients by 1/B^2, so a fixed threshold alone grows
    # everything: at most this fraction of a set (highest gradients first) grows per step
    grow_fraction: float = 0.05
    split_scale: float = 0.01  # split (not clone) Gaussians larger than this x scene scale
    prune_opacity: float = 0.005
    max_gaussians: dict[str, int] = {"static": 400_000, "semistatic": 100_000,
                                     "dynamic": 100_000}
    max_seconds: float | None = None  # stop (and checkpoint) once this wall-clock budget is spent
    checkpoint_every: PositiveInt = 2_000
    log_every: PositiveInt = 50


class FusionConfig(Section):
    """Layered Motion Fusion weights (paper: 1.1 and 1.0) and the NMF binarisation threshold."""

    lambda_pmf: float = 1.1
    lambda_nmf: float = 1.0
    threshold: float = 0.5


class RefineConfig(Section):
    """Test-time refinement (TR): only the semi-static and dynamic sets are optimised."""

    iters_per_frame: PositiveInt = 100  # steps per frame of T_N (test frames + neighbours)
    min_iters: PositiveInt = 200
    # multiplies the training learning rates at their start (training ends them decayed): at
    # 1.0 TR on all 99 frames of DAVIS soapbox fell from the trained 80.6 Dyn to 70.4 (20
    # frames: 79.2 -> 78.6); at 0.3 it gains (20 frames: 81.3); the demo: 81.2 -> 80.6
    lr_scale: float = 0.3
    # and, for the semi-static set only: fine-tuning gently keeps resting objects that get
    # little colour gradient on the analysed frames from being washed out by fusion gradients
    semistatic_lr_scale: float = 0.2
    densify: bool = False  # grow/prune the non-static sets during refinement
    neighbors: int = 0  # N of Eq. 16-17 (paper: N = 0 is best)
    sparsity: float = 0.0  # the paper's TR loss is L_rgb + L_PMF + L_NMF (Eq. 13): no sparsity
    fusion: Literal["none", "pmf", "nmf", "lmf"] = "lmf"
    checkpoint_every: PositiveInt = 500  # an interrupted refinement resumes from here
    max_seconds: float | None = None  # its own budget (the training budget does not apply)


class NerfConfig(Section):
    """NeuralDiff reference backend (``--backend nerf``), as published: positional encodings,
    static MLP (depth x width, skip) with per-frame appearance, semi-static head on the shared
    trunk + z_t, camera-frame dynamic head + z_t, coarse (static) + fine (importance) samples.

    The train/held-out split and the seed are ``train.holdout_every`` and ``train.seed``, and TR
    uses ``refine.*``, so both backends see the same frames.
    """

    width: int = 256  # trunk width W; the semi-static and dynamic heads use W / 2
    depth: int = 8  # trunk layers
    skips: tuple[int, ...] = (4,)  # trunk layers that see the encoded position again
    xyz_freqs: int = 10  # positional encoding octaves of positions (63 features)
    dir_freqs: int = 4  # ... of view directions (27 features)
    appearance_dim: int = 48  # per-frame appearance embedding of the static colour
    # z_t = phi(t) W, phi with K = 1 + 2 L Fourier features: as `ModelConfig`'s time fields
    # (NeuralDiff: octaves, L = 10, K = 21; here L is derived from the video's duration)
    time_basis: Literal["octave", "linear"] = "octave"
    time_freqs: int | None = Field(None, ge=1)
    time_period_s: float = Field(2.0, gt=0)
    latent_dim: int = 17  # D
    beta_min: float = 0.03
    coarse_samples: int = 64  # stratified between the frame's near/far (static field only)
    fine_samples: int = 64  # importance samples from the coarse weights (all three layers)
    noise_std: float = 1.0  # density noise of the coarse pass while training
    batch_rays: PositiveInt = 1024
    chunk: PositiveInt = 16_384  # rays per forward pass when rendering whole frames
    lr: float = 5e-4  # Adam, cosine-annealed to 0 over the iterations
    iters: PositiveInt = 20_000
    epochs: float | None = None  # when set: iters = epochs x training rays / batch_rays
    sparsity: float = 0.01  # x mean density of the semi-static and dynamic layers
    max_seconds: float | None = None  # stop (and checkpoint) once this wall-clock budget is spent
    checkpoint_every: PositiveInt = 1_000
    log_every: PositiveInt = 50


class Config(Section):
    data: DataConfig = DataConfig()
    eval: EvalConfig = EvalConfig()
    render: RenderConfig = RenderConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    fusion: FusionConfig = FusionConfig()
    refine: RefineConfig = RefineConfig()
    nerf: NerfConfig = NerfConfig()


def _set_path(tree: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise LmfError(f"--set {dotted}: {k} is not a section")
    node[keys[-1]] = value


def resolve_config_path(name: str | Path) -> Path:
    """A config file path, or a bare name looked up in ``configs/`` (``gs_cpu`` -> gs_cpu.yaml)."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise LmfError(f"config file not found: {path}")
        return path
    candidate = CONFIG_DIR / f"{name}.yaml"
    if not candidate.is_file():
        known = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
        raise LmfError(f"unknown config {name!r}: no {candidate} (known: {', '.join(known)})")
    return candidate


def load_config(name: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Load a YAML config (or the defaults), then apply ``key.sub=value`` overrides (YAML)."""
    tree: dict[str, Any] = {}
    if name is not None:
        path = resolve_config_path(name)
        try:
            tree = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise LmfError(f"{path}: malformed YAML ({str(e).splitlines()[0]})") from None
        if not isinstance(tree, dict):
            raise LmfError(f"{path}: expected a mapping at the top level")
    for item in overrides or []:
        if "=" not in item:
            raise LmfError(f"--set {item!r}: expected key=value, e.g. train.iters=500")
        key, raw = item.split("=", 1)
        _set_path(tree, key.strip(), yaml.safe_load(raw) if raw.strip() else "")
    try:
        return Config.model_validate(tree)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise LmfError(f"config error at {where}: {err['msg']}") from None


def save_config(cfg: Config, path: Path) -> None:
    """Write the resolved config as YAML."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
