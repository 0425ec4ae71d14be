"""``featlib app``: the checks it makes before it becomes the Streamlit server. The server
itself is driven in a browser by tests/system/test_browser_feature_file.py."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from featlib.cli import commands, main
from featlib.cli.commands import APP_FEATURES_ENV, APP_IMAGES_ENV
from tests.system.feature_sets import write_feature_set


@pytest.fixture
def started(monkeypatch):
    """What ``os.execve`` was called with, instead of becoming the server."""
    calls = []
    monkeypatch.setattr(commands.os, "execve", lambda *args: calls.append(args))
    return calls


def test_app_starts_streamlit_on_the_file_and_its_pictures(tmp_path, started, monkeypatch):
    path, root = write_feature_set(tmp_path, 6, dim=4, n_classes=2)
    monkeypatch.chdir(root)  # relative paths are made absolute for the server
    monkeypatch.setenv(APP_IMAGES_ENV, "left over from another run")
    assert main(["app", os.path.relpath(path), "--images", ".", "--port", "8611"]) == 0
    [(program, command, env)] = started
    assert program == sys.executable
    assert command[1:4] == ["-m", "streamlit", "run"]
    assert Path(command[4]).name == "app.py" and Path(command[4]).is_file()
    assert Path.cwd() == Path(command[4]).parent  # its .streamlit/config.toml applies
    assert command[command.index("--server.port") + 1] == "8611"
    assert env[APP_FEATURES_ENV] == str(path.resolve())
    assert env[APP_IMAGES_ENV] == str(root.resolve())
    assert main(["app", str(path)]) == 0  # no pictures: points and labels only
    assert APP_IMAGES_ENV not in started[-1][2]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["nowhere.parquet"], "nowhere.parquet: not found; a feature file is"),
        (["{images}"], "not a feature file"),
        (["{features}", "--images", "{features}"], "--images must be a folder or a .zip file"),
        (["{features}", "--images", "missing/"], "--images must be a folder or a .zip file"),
    ],
)
def test_app_refuses_what_it_cannot_open_before_starting(tmp_path, started, capsys, args, said):
    path, root = write_feature_set(tmp_path, 4, dim=4, n_classes=2)
    args = [a.format(features=path, images=root) for a in args]
    assert main(["app", *args]) == 2
    assert said in capsys.readouterr().err
    assert started == []
