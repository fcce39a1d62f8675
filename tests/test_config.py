"""Typed configs, overrides and the resolved-config round trip."""

from pathlib import Path

import pytest

from lmf_gs.config import load_config, save_config
from lmf_gs.errors import LmfError


def test_defaults_are_the_canonical_layout():
    cfg = load_config()
    assert cfg.data.root == Path("data")
    assert cfg.data.frames == "{root}/frames/{vid}"
    assert cfg.eval.split == "within_action"


def test_overrides_are_typed():
    cfg = load_config(None, ["data.downscale=2", "data.root=/x/y", "data.cache_frames=false"])
    assert cfg.data.downscale == 2 and cfg.data.root == Path("/x/y")
    assert cfg.data.cache_frames is False


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.nope=1", "config error at data.nope"),
        ("data.downscale=0", "config error at data.downscale"),
        ("data.downscale", "expected key=value"),
        ("eval.split=train", "config error at eval.split"),
    ],
)
def test_bad_overrides(override, message):
    with pytest.raises(LmfError, match=message):
        load_config(None, [override])


def test_yaml_file_and_round_trip(tmp_path):
    f = tmp_path / "my.yaml"
    f.write_text("data:\n  downscale: 4\n  frames: /ek100/{pid}/rgb_frames/{vid}.tar\n")
    cfg = load_config(f, ["data.downscale=2"])
    assert cfg.data.downscale == 2 and cfg.data.frames.startswith("/ek100/")
    save_config(cfg, tmp_path / "out" / "config.yaml")
    assert load_config(tmp_path / "out" / "config.yaml") == cfg


def test_unknown_config_name():
    with pytest.raises(LmfError, match="unknown config 'nope'"):
        load_config("nope")
