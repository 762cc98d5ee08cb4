"""Configuration: frozen dataclasses, YAML presets, dotted overrides, strict validation.

A run is fully described by one `Config`. Presets are YAML files holding a partial
config (sections and keys below); `--train.lr_d=4e-4` style overrides are applied on
top. Unknown sections or keys and values of the wrong type are errors naming the key
and what is valid. The resolved config is saved with every run (`config.yaml`) and
is enough to rerun it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A config file, preset or override is invalid; the message names the key."""


@dataclass(frozen=True)
class DataConfig:
    source: str = "emoji"  # built-in name ("emoji"), a .npz file, or a folder of images
    resolution: int = 32  # images are resized / centre-cropped to resolution x resolution
    channels: int = 3  # 3 = RGB, 1 = grey
    skip_bad: bool = False  # skip unreadable image files (and report how many) instead of failing
    holdout: float = 0.0  # fraction of the images kept out of training for held-out evaluation (stratified by label)
    holdout_seed: int = 0  # seed of that split (not train.seed: every seed of a study sees the same split)


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "dcgan"  # network family: dcgan | mlp | fastgan (FastGAN-lite G with SLE) | began (auto-encoder D; needs train.variant=began)
    nz: int = 100  # latent dimension fed to G
    g_width: int = 64  # base channel count of G (DCGAN "ngf") or hidden scale of the MLP
    d_width: int = 64  # base channel count of D (DCGAN "ndf")
    spectral_norm: bool = False  # spectral normalisation on every D layer (removes BN from D)
    mlp_batchnorm: bool = False  # BN on the MLP generator's hidden layers
    mlp_dropout: float = 0.3  # dropout in the MLP discriminator
    conditional: bool = False  # class-conditional G and D (docs/methods.md §12); needs labelled data (dcgan only)
    cond_mode: str = "projection"  # how a conditional D uses the label: projection | concat (one-hot input maps)
    cond_embed: int = 128  # size of G's label embedding, concatenated to z
    transition_start: int = 500  # train.variant=transitional: iteration at which conditioning starts to fade in
    transition_end: int = 1000  # ... and at which it is complete (lambda_t = 1); Shahbazi et al. 2022
    g_norm: str = "batch"  # norm in the DCGAN generator: batch | mixture (MixtureNorm2d after the 4x4 and 8x8 layers, docs/methods.md §14)
    mixnorm_k: int = 3  # mixture components of MixtureNorm2d (1 = BatchNorm)
    fastgan_sle: bool = True  # model.arch=fastgan: skip-layer excitation gates from low- to high-res maps (false = ablation)
    proj_input: int = 64  # train.variant=projected: side of the backbone's input (multiple of 32); provisional, chosen by benchmark
    proj_ch: int = 64  # train.variant=projected: CCM's base channels cout (cout, 2cout, 4cout, 8cout per tap), the authors' 64


@dataclass(frozen=True)
class LatentConfig:
    kind: str = "gaussian"  # latent sampler in front of G: gaussian | cft | deligan | uniform
    fd: int = 1  # CFT: extra dimensions; W maps R^nz -> R^(nz+fd) (docs/methods.md §3)
    cft_trainable: bool = True  # CFT: train W, b with G (false freezes them at their init)
    mean_rescale: bool = False  # MR: add one mean mu ~ U(mr_low, mr_high) to each latent vector (§4)
    mr_low: float = -1.0
    mr_high: float = 1.0
    components: int = 50  # DeLiGAN: number of mixture components (§6)
    sigma_init: float = 0.2  # DeLiGAN: initial sigma (constant), or the half-width of U(-s, s) with sigma_init_uniform
    sigma_init_uniform: bool = False  # DeLiGAN: sigma ~ U(-sigma_init, sigma_init) as in the CIFAR code
    lambda_sigma: float = 0.3333333333333333  # DeLiGAN: weight of mean((1 - sigma)^2) in G's loss (0 = off)
    assign: str = "uniform"  # DeLiGAN: component per sample: uniform | stratified (row i -> component i mod N)
    trainable: bool = True  # DeLiGAN: learn mu and sigma (false freezes them)


@dataclass(frozen=True)
class LossConfig:
    kind: str = "bce"  # bce (non-saturating G) | minimax | lsgan | hinge
    smooth: str = "none"  # none | onesided_const | onesided_uniform (targets for real images in D)
    smooth_alpha: float = 0.9  # real target for onesided_const
    smooth_low: float = 0.9  # range of real targets for onesided_uniform
    smooth_high: float = 1.0
    flip_p: float = 0.0  # probability of swapping real/fake targets per sample in the D loss


@dataclass(frozen=True)
class RegConfig:
    edge_weight: float = 0.0  # weight of the edge loss in G's loss (0 = off; docs/methods.md §5)
    edge_mode: str = "batch"  # batch: Sobel-edge batch statistics matched; literal: paired pixel MSE of eq. 3
    edge_d_input: bool = False  # D sees cat[x, Sobel edge map of x] (C + 1 channels)
    lecam_weight: float = 0.0  # lambda of LeCam's R_LC in D's loss (0 = off; Tseng et al. 2021)
    lecam_decay: float = 0.99  # decay of the EMAs alpha_R, alpha_F of D's mean real / fake logits
    lecam_start: int = 0  # iteration from which R_LC is added (the EMAs are tracked from the start)
    r1_gamma: float = 0.0  # R1 = gamma/2 E||grad_x D(x)||^2 on (un-augmented) reals (0 = off)
    r1_interval: int = 16  # lazy R1: every N D steps, scaled by N; D's Adam gets lr*c, beta^c, c = N/(N+1)


@dataclass(frozen=True)
class AugConfig:
    """Differentiable augmentation of every D input (fewgan.augment): DiffAugment, ADA, APA."""

    policy: str = "none"  # none | ada (ADA's bgc pipeline) | comma-separated ops, e.g. color,translation,cutout
    p: float = 1.0  # probability each op is applied to each sample (the start value when adaptive)
    adaptive: bool = False  # ADA's controller steers p by r_t = E[sign(D(real))]
    target: float = 0.6  # r_t the controller aims at
    interval: int = 4  # iterations between controller updates
    speed_img: int = 0  # images for p to move by 1; 0 = (train.steps * batch) / 5, so p can move in any run length
    apa: bool = False  # APA: replace reals by detached fakes (labelled real) with an adaptive probability
    apa_p: float = 0.0  # APA's start probability
    apa_target: float = 0.6  # r_t APA's controller aims at


@dataclass(frozen=True)
class TrainConfig:
    variant: str = "standard"  # GAN family's train-step logic (see fewgan.variants)
    schedule: str = "fixed"  # how many D / G updates each iteration gets (fewgan.training.schedules)
    steps: int = 2000  # iterations; each does d_steps D updates then g_steps G updates
    max_updates: int = 0  # also stop once this many D + G updates are done (0 = no limit): an equal-compute budget
    batch_size: int = 64
    d_steps: int = 1  # D updates per iteration
    g_steps: int = 1  # G updates per iteration (the g_advantage ratio when d_steps = 1)
    reuse_z: bool = False  # G updates reuse the iteration's z (as the DCGAN-tensorflow fork did)
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1_g: float = 0.5
    beta2_g: float = 0.999
    beta1_d: float = 0.5
    beta2_d: float = 0.999
    ema: float = 0.0  # decay of an EMA copy of G used for sampling; 0 = no EMA
    seed: int = 0
    fast: bool = False  # fast path: channels_last + autocast in train.amp's dtype, TF32 on CUDA (see benchmarks/throughput.py)
    amp: str = "bf16"  # autocast dtype of the fast path: bf16 | fp16 (fp16: one GradScaler per optimiser)
    device: str = "auto"  # auto (cuda, then mps, then cpu) | cpu | cuda | cuda:N | mps (README "Devices and precision")
    deterministic: bool = False  # deterministic algorithms (CUDA: bit-exact resume on the same GPU; CPU: already exact)
    threads: int = 0  # torch intra-op threads; 0 = leave torch's default
    on_nonfinite: str = "stop"  # a NaN / inf loss, gradient norm or weight: stop | rollback (to the last good checkpoint) | continue
    rollback_lr: float = 0.5  # on_nonfinite=rollback: multiply every learning rate by this at each rollback
    max_rollbacks: int = 3  # on_nonfinite=rollback: stop after this many rollbacks in one run


@dataclass(frozen=True)
class LogConfig:
    sample_every: int = 500  # write a sample grid from fixed latents every N iterations (0 = only at the end)
    ckpt_every: int = 1000  # write a checkpoint every N iterations (0 = only at the end)
    keep_ckpts: int = 3  # how many periodic checkpoints to keep (the final one is always kept)
    n_fixed: int = 64  # number of fixed latents in the sample grid
    tensorboard: bool = False  # also write TensorBoard scalars and images
    progress: bool = True  # show a progress bar
    monitors: tuple[str, ...] = ()  # signals computed while training (fewgan.training.monitors)


@dataclass(frozen=True)
class EvalConfig:
    every: int = 0  # evaluate during training every N iterations (0 = never; `fewgan eval` any time)
    n: int = 1000  # generated samples per evaluation
    backbone: str = "effnet-lite0"  # feature network: effnet-lite0 (offline default) | effnet-lite2 | inception
    backbones: tuple[str, ...] = ()  # more backbones to score with (their metrics get a _<backbone> suffix)
    kid_subset: int = 500  # KID subset size (capped at the smaller sample count)
    n_boot: int = 50  # bootstrap resamples for the FD / KID confidence intervals (0 = none)


@dataclass(frozen=True)
class BEGANConfig:
    gamma: float = 0.5  # diversity ratio E[L(G(z))] / E[L(x)] that k_t steers towards (0.3-0.7; lower = less diverse)
    lambda_k: float = 0.001  # learning rate of the control variable k_t
    k0: float = 0.0  # initial k_t
    hidden: int = 64  # n: channels of G's and the decoder's blocks (the encoder grows n, 2n, ..., Rn)
    h: int = 64  # size of D's bottleneck code (model.nz sets G's latent size)
    skip: str = "none"  # skip connections in G and D's decoder: none | add (Yin) | concat | began
    recon: str = "l1"  # auto-encoder loss L(v): l1 = mean|v - D(v)| | l2 = mean (v - D(v))^2
    lr_decay_patience: int = 2000  # iterations without a >= lr_decay_min_rel gain in EMA(M_global) before the lrs decay; 0 = never
    lr_decay_factor: float = 0.5  # multiply both learning rates by this when M_global stalls
    lr_decay_min_rel: float = 0.01  # relative improvement of EMA(M_global) that counts as progress
    lr_floor: float = 1e-6  # learning rates never decay below this
    m_ema: float = 0.01  # alpha of the EMA of M_global used by the stall test


@dataclass(frozen=True)
class BalanceConfig:
    """The adaptive G:D balance controller (train.schedule=autobalance, fewgan.training.schedules.autobalance)."""

    signal: str = "log_ratio"  # log_ratio = log(L_G/L_D) (docs/methods.md §9) | d_real = D's mean sigmoid on real images
    low: float | None = None  # lower edge of the target band (default -0.5 for log_ratio, 0.6 for d_real)
    high: float | None = None  # upper edge of the target band (default 0.5 for log_ratio, 0.8 for d_real)
    ema: float = 0.9  # decay of the signal's exponential moving average
    every: int = 10  # iterations between decisions
    min_g: int = 1  # fewest G updates per iteration
    max_g: int = 8  # most G updates per iteration


@dataclass(frozen=True)
class MonitorConfig:
    """The online collapse / instability monitor (log.monitors: [collapse], fewgan.training.monitors.collapse)."""

    every: int = 100  # compute the sample-based signals (diversity, NDB) every N iterations
    warmup: int = 200  # no warnings before this iteration (a fresh G is neither diverse nor stable)
    n: int = 128  # fixed-z samples generated for diversity and NDB
    n_real: int = 512  # real images (a fixed seeded subset) for the reference diversity and NDB cells
    pixels: int = 8  # cheap feature: images average-pooled to pixels x pixels, flattened
    window: int = 50  # iterations over which D saturation and loss oscillation are judged
    diversity_min: float = 0.3  # warn: fixed-z mean pairwise distance below this fraction of the real images'
    saturation: float = 0.05  # warn: window means d_real > 1 - this and d_fake < this
    oscillation_max: float = 0.8  # warn: std / mean of loss_d or loss_g over the window above this (a/b alternation: |a-b|/(a+b))
    ndb_cells: int = 10  # k-means cells for the small-sample NDB
    ndb_max: float = 0.6  # warn: NDB / K above this
    dup_quantile: float = 0.05  # near-duplicate threshold: this quantile of real images' nearest-neighbour distances at the same n
    dup_max: float = 0.25  # warn: more than this fraction of the fixed-z samples have a near-duplicate among them


@dataclass(frozen=True)
class HGANConfig:
    """HGAN (train.variant=hgan, docs/methods.md §13): a distillation discriminator D_T on a frozen PixelCNN teacher."""

    teacher: str = ""  # teacher file from `fewgan teacher train`; "" = teachers/<data.source stem>.safetensors
    lambda_t: float = 1.0  # weight of the distillation term: G's adversarial loss against D_T
    lambda_nll: float = 0.0  # weight of the teacher's (soft-binned, differentiable) NLL of G(z); mode-seeking, off by default
    dt_width: int = 64  # base channels of D_T (3 stride-2 SN convs: w, 2w, 4w)
    lr_dt: float = 2e-4  # Adam learning rate of D_T (betas as D's)
    dt_input: str = "hidden"  # what D_T compares: hidden (teacher's last hidden map of x vs G(z)) | samples (a bank of teacher samples vs G(z))
    sample_bank: str = ""  # dt_input=samples: .npz of teacher samples (`fewgan teacher sample -o bank.npz -n 10000`)
    joint_teacher_steps: int = 0  # teacher NLL steps on the real batch per iteration ("joint"); 0 = teacher frozen
    lr_teacher: float = 1e-4  # Adam learning rate of those teacher steps


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    latent: LatentConfig = field(default_factory=LatentConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    reg: RegConfig = field(default_factory=RegConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    aug: AugConfig = field(default_factory=AugConfig)
    log: LogConfig = field(default_factory=LogConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    began: BEGANConfig = field(default_factory=BEGANConfig)
    balance: BalanceConfig = field(default_factory=BalanceConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    hgan: HGANConfig = field(default_factory=HGANConfig)
    preset: str = ""  # name of the preset this config started from (informational)


# ----------------------------------------------------------------------------- helpers


def _section_types() -> dict[str, type]:
    hints = typing.get_type_hints(Config)
    return {f.name: hints[f.name] for f in fields(Config) if is_dataclass(hints[f.name])}


def _coerce(value: Any, typ: Any, key: str) -> Any:
    """Check / convert a parsed YAML or CLI value to the declared field type."""
    if typ is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if typ is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    origin = typing.get_origin(typ)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (inner,) = typing.get_args(typ)[:1]
        return tuple(_coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value))
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, args[0], key)
    raise ConfigError(f"{key}: unsupported field type {typ}")


def _update_section(section: Any, values: dict, prefix: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{prefix}: expected a mapping of keys, got {values!r}")
    hints = typing.get_type_hints(type(section))
    known = {f.name for f in fields(section)}
    changes = {}
    for k, v in values.items():
        if k not in known:
            raise ConfigError(f"unknown key {prefix}.{k}; valid keys of {prefix}: {', '.join(sorted(known))}")
        changes[k] = _coerce(v, hints[k], f"{prefix}.{k}")
    return replace(section, **changes)


def from_dict(d: dict, base: Config | None = None, where: str = "config") -> Config:
    """Apply a (partial) nested dict to `base` (default: all defaults), validating every key."""
    cfg = base or Config()
    if d is None:
        return cfg
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected a mapping at top level, got {type(d).__name__}")
    sections = _section_types()
    changes: dict[str, Any] = {}
    for k, v in d.items():
        if k == "preset":
            changes["preset"] = _coerce(v, str, "preset")
        elif k in sections:
            changes[k] = _update_section(changes.get(k, getattr(cfg, k)), v, k)
        else:
            raise ConfigError(
                f"{where}: unknown section {k!r}; valid sections: {', '.join(sorted(sections))}, preset"
            )
    return replace(cfg, **changes)


def to_dict(cfg: Config) -> dict:
    out = dataclasses.asdict(cfg)

    def untuple(x):
        if isinstance(x, dict):
            return {k: untuple(v) for k, v in x.items()}
        if isinstance(x, tuple):
            return [untuple(v) for v in x]
        return x

    return untuple(out)


def parse_override(text: str) -> tuple[str, str, Any]:
    """'--train.lr_d=4e-4' or 'train.lr_d=4e-4' -> ('train', 'lr_d', 0.0004)."""
    s = text[2:] if text.startswith("--") else text
    if "=" not in s:
        raise ConfigError(f"override {text!r}: expected --section.key=value")
    key, raw = s.split("=", 1)
    if key.count(".") != 1:
        raise ConfigError(f"override {text!r}: expected --section.key=value (one dot), e.g. --train.lr_d=4e-4")
    section, name = key.split(".")
    value = yaml.safe_load(raw) if raw != "" else ""
    # YAML reads 1e-4 as a string (no dot); accept it as a number
    if isinstance(value, str):
        try:
            value = float(value) if any(c in value for c in "eE.") else value
        except ValueError:
            pass
    return section, name, value


def apply_overrides(cfg: Config, overrides: list[str]) -> Config:
    for o in overrides:
        section, name, value = parse_override(o)
        # strings given on the command line stay strings even if they look numeric
        sections = _section_types()
        if section in sections:
            hints = typing.get_type_hints(sections[section])
            if hints.get(name) is str and not isinstance(value, str):
                value = o.split("=", 1)[1]
        cfg = from_dict({section: {name: value}}, cfg, where=f"override {o!r}")
    return cfg


def preset_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("fewgan.presets").iterdir() if p.name.endswith(".yaml"))


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None


def load_preset(name_or_path: str) -> Config:
    """A preset by name (fewgan/presets/NAME.yaml) or a path to a YAML config file.

    A preset may name a parent with `base: OTHER` and then only state what differs.
    """
    if name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path:
        d = load_yaml(name_or_path)
        where = str(name_or_path)
    else:
        f = resources.files("fewgan.presets").joinpath(f"{name_or_path}.yaml")
        if not f.is_file():
            raise ConfigError(f"unknown preset {name_or_path!r}; known presets: {', '.join(preset_names())}")
        d = yaml.safe_load(f.read_text()) or {}
        where = f"preset {name_or_path}"
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected a mapping at top level")
    base = d.pop("base", None)
    cfg = load_preset(base) if base else Config()
    cfg = from_dict(d, cfg, where=where)
    if not (name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path):
        cfg = replace(cfg, preset=name_or_path)
    return cfg


def save_yaml(cfg: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
