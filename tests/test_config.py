import pytest

from fewgan import config as config_mod
from fewgan.config import ConfigError


def test_presets_load_and_differ_as_documented():
    names = config_mod.preset_names()
    for required in ("dcgan", "mlp-gan", "dcgan-g2", "dcgan-smooth", "sngan"):
        assert required in names
    assert config_mod.load_preset("mlp-gan").model.arch == "mlp"
    assert config_mod.load_preset("dcgan-g2").train.g_steps == 2
    s = config_mod.load_preset("dcgan-smooth").loss
    assert (s.smooth, s.smooth_low, s.smooth_high, s.flip_p) == ("onesided_uniform", 0.9, 1.0, 0.05)
    assert config_mod.load_preset("sngan").model.spectral_norm is True
    assert config_mod.load_preset("dcgan").preset == "dcgan"


def test_every_preset_is_valid():
    for name in config_mod.preset_names():
        config_mod.load_preset(name)


def test_overrides_types():
    cfg = config_mod.apply_overrides(config_mod.Config(), [
        "--train.lr_d=4e-4", "--train.steps=10", "--model.spectral_norm=true", "--data.source=cifar.npz",
        "--loss.smooth_alpha=1"])
    assert cfg.train.lr_d == pytest.approx(4e-4) and isinstance(cfg.train.lr_d, float)
    assert cfg.train.steps == 10 and cfg.model.spectral_norm is True
    assert cfg.data.source == "cifar.npz" and cfg.loss.smooth_alpha == 1.0


def test_numeric_looking_string_stays_string():
    cfg = config_mod.apply_overrides(config_mod.Config(), ["--data.source=1000"])
    assert cfg.data.source == "1000"


def test_unknown_key_names_key_and_valid_ones():
    with pytest.raises(ConfigError, match=r"train\.lr_x.*lr_d.*lr_g"):
        config_mod.apply_overrides(config_mod.Config(), ["--train.lr_x=1"])


def test_unknown_section():
    with pytest.raises(ConfigError, match="unknown section 'optim'.*train"):
        config_mod.from_dict({"optim": {"lr": 1}})


@pytest.mark.parametrize("override,msg", [
    ("--train.steps=abc", "train.steps: expected an integer"),
    ("--train.steps=1.5", "train.steps: expected an integer"),
    ("--model.spectral_norm=maybe", "model.spectral_norm: expected true/false"),
    ("--train.lr_g=fast", "train.lr_g: expected a number"),
    ("train.lr_g", "expected --section.key=value"),
])
def test_wrong_types(override, msg):
    with pytest.raises(ConfigError, match=msg.replace(".", r"\.")):
        config_mod.apply_overrides(config_mod.Config(), [override])


def test_unknown_preset_lists_known():
    with pytest.raises(ConfigError, match="known presets: .*dcgan"):
        config_mod.load_preset("nope")


def test_saved_yaml_round_trips(tmp_path):
    cfg = config_mod.apply_overrides(config_mod.load_preset("sngan"), ["--train.steps=7"])
    config_mod.save_yaml(cfg, tmp_path / "c.yaml")
    again = config_mod.from_dict(config_mod.load_yaml(tmp_path / "c.yaml"))
    assert again == cfg


def test_yaml_file_with_base(tmp_path):
    p = tmp_path / "mine.yaml"
    p.write_text("base: sngan\ntrain:\n  lr_d: 0.0004\n")
    cfg = config_mod.load_preset(str(p))
    assert cfg.model.spectral_norm and cfg.train.lr_d == 4e-4


def test_bad_yaml_names_file(tmp_path):
    p = tmp_path / "broken.yaml"
    p.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml"):
        config_mod.load_preset(str(p))
