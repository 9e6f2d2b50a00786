"""The shell recipes in ``docs/recipes`` stay in step with the command line.

Each recipe is run by bash with a stand-in ``stommel`` first on ``PATH`` that only records its
arguments (nothing is trained or simulated); every recorded command is then parsed by the real
``stommel`` parser, so a renamed or removed option, a misspelt sub-command or a value of the wrong
type in a recipe fails here rather than an hour into a run.
"""

import os
import subprocess
from pathlib import Path

import pytest

from stommel.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "docs" / "recipes").glob("*.sh"))

# the stand-in: one file per call (recipes run commands in parallel), NUL-separated arguments
FAKE = """#!/bin/bash
f=$(mktemp "$STOMMEL_CALLS/call.XXXXXX")
for a in "$@"; do printf '%s\\0' "$a"; done > "$f"
"""


def _calls(logdir):
    """The recorded argument lists."""
    return [p.read_bytes().decode().split("\0")[:-1] for p in sorted(logdir.iterdir())]


def test_recipes_exist():
    assert len(RECIPES) >= 3, RECIPES


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_recipe_commands_parse(recipe, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "stommel"
    fake.write_text(FAKE)
    fake.chmod(0o755)
    log = tmp_path / "calls"
    log.mkdir()
    # a run directory with what the recipes check for before they start
    runs = tmp_path / "runs"
    (runs / "acc1_wind").mkdir(parents=True)
    (runs / "acc1_wind" / "meta.json").write_text("{}")
    (runs / "acc1_wind_scratch_pnuv_k16").mkdir()
    (runs / "acc1_wind_scratch_pnuv_k16" / "emulator.npz").write_bytes(b"")
    for run in ("acc1_wind_scratch_pnuv_k32", "acc1_wind_scratch_pnuv_k32_white"):
        (runs / run).mkdir()
        (runs / run / "emulator.npz").write_bytes(b"")
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}",
               STOMMEL_CALLS=str(log))
    res = subprocess.run(["bash", "-n", str(recipe)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    res = subprocess.run(["bash", str(recipe), str(runs)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    calls = _calls(log)
    assert len(calls) >= 3, calls
    parser = build_parser()
    for argv in calls:
        assert argv[0] in ("run", "plot", "emulator", "gradcheck"), argv
        try:
            args, extra = parser.parse_known_args(argv)
        except SystemExit:  # argparse has printed why
            pytest.fail(f"{recipe.name}: 'stommel {' '.join(argv)}' does not parse")
        assert not extra, (recipe.name, extra)
        assert getattr(args, "func", None) is not None, argv


def test_stand_in_catches_a_bad_option(tmp_path):
    """The check above can fail: an unknown option or a bad value does not parse."""
    parser = build_parser()
    for argv in (["emulator", "train", "--data", "d", "--out", "o", "--rollout-stepz", "4"],
                 ["emulator", "train", "--data", "d", "--out", "o", "--loss", "l1"]):
        with pytest.raises(SystemExit):
            args, extra = parser.parse_known_args(argv)
            if extra:  # mirror the recipe test: leftovers are an error too
                raise SystemExit(2)
