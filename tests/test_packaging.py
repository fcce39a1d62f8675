"""A non-editable install of lmf-gs finds its named configs (package data)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from lmf_gs.config import CONFIG_DIR

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "lmf_gs", "cli", "configs")

CHECK = """
import sys
from pathlib import Path
import lmf_gs
from lmf_gs.config import CONFIG_DIR, load_config
site = Path(sys.argv[1]).resolve()
assert Path(lmf_gs.__file__).resolve().is_relative_to(site), lmf_gs.__file__
assert CONFIG_DIR.resolve().is_relative_to(site), CONFIG_DIR
cfg = load_config("gs_cpu")
print(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")), cfg.train.iters, cfg.data.downscale)
"""


def test_checkout_configs_are_the_package_data():
    assert CONFIG_DIR.resolve() == (REPO / "configs").resolve()


def test_non_editable_install_finds_the_named_configs(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, src / name)
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(site), str(src)],
                   check=True, capture_output=True, cwd=tmp_path)
    assert sorted(p.name for p in (site / "lmf_gs" / "configs").iterdir()) == sorted(
        p.name for p in (REPO / "configs").glob("*.yaml"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", CHECK, str(site)], cwd=elsewhere, env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    expected = yaml.safe_load((REPO / "configs" / "gs_cpu.yaml").read_text())
    names = sorted(p.stem for p in (REPO / "configs").glob("*.yaml"))
    assert out.stdout.split("]")[0] + "]" == str(names)
    assert out.stdout.split()[-2:] == [str(expected["train"]["iters"]),
                                       str(expected["data"]["downscale"])]
