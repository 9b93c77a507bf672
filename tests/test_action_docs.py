"""docs/writing-actions.md: its complete action is under 40 lines and works as documented (loaded
through `[plugins] modules` from the doc's own TOML, run by the service and by the CLI)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib

import pytest

from conftest import REPO, dashfleet_cmd
from dashfleet_core.actions import ActionRefused, ActionService
from dashfleet_core.config import load_settings
from dashfleet_core.plugins import make_plugin_manager
from dashfleet_core.storage import open_storage

DOC = REPO / "docs" / "writing-actions.md"


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(), re.S)


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    code = blocks("python")[0]
    assert len(code.strip().splitlines()) < 40
    folder = tmp_path / "pkg"
    folder.mkdir()
    (folder / "my_actions.py").write_text(code)
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    sys.modules.pop("my_actions", None)


@pytest.fixture
def config_file(tmp_path):
    """The doc's TOML, with the cache folder pointed at a temporary tree."""
    cache = tmp_path / "cache"
    (cache / "sub").mkdir(parents=True)
    (cache / "big.bin").write_bytes(b"b" * 2048)
    (cache / "sub" / "small.bin").write_bytes(b"s" * 10)
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"o" * 4096)
    os.symlink(outside, cache / "link.bin")
    data = tomllib.loads(blocks("toml")[0])
    assert data["plugins"]["modules"] == ["my_actions"]
    text = blocks("toml")[0].replace('"/var/cache/myapp"', json.dumps(str(cache)))
    text += f'\n[storage]\nurl = "sqlite:///{tmp_path}/dashfleet.db"\n'
    path = tmp_path / "dashfleet.toml"
    path.write_text(text)
    return path, cache, outside


def test_documented_action_runs_through_the_service(plugin_dir, config_file):
    path, cache, outside = config_file
    settings = load_settings(path, env={})
    pm = make_plugin_manager(settings, entrypoints=False)
    with open_storage(settings, pm) as storage:
        service = ActionService(settings, pm, storage)
        assert service.owner["clear_myapp_cache"] == "my_actions"
        dry = service.run("clear_myapp_cache", {"dry_run": True, "min_kib": 1}, actor="test")
        assert dry.ok and dry.summary == "would free 2048 bytes" and (cache / "big.bin").exists()
        with pytest.raises(ActionRefused) as err:
            service.run("clear_myapp_cache", {"min_kib": "512"}, actor="test")
        assert err.value.status == 422 and err.value.extra["fields"] == ["min_kib"]
        done = service.run("clear_myapp_cache", {}, actor="test")
        assert done.ok and done.details["bytes"] == 2058
        assert [r.outcome for r in storage.audit()] == ["ok", "refused", "ok"]
    assert sorted(p.name for p in cache.rglob("*")) == ["link.bin", "sub"]
    assert outside.read_bytes() == b"o" * 4096


def test_documented_commands_work(plugin_dir, config_file):
    path, cache, outside = config_file
    env = {k: v for k, v in os.environ.items() if k not in ("DASHFLEET_CONFIG", "ACTION_TOKEN")}
    env["PYTHONPATH"] = str(plugin_dir)

    def run(*args):
        return subprocess.run(dashfleet_cmd() + list(args) + ["--config", str(path)],
                              capture_output=True, text=True, timeout=60, env=env)

    listed = run("actions")
    assert listed.returncode == 0 and "clear_myapp_cache" in listed.stdout, listed.stderr
    dry = run("action", "run", "clear_myapp_cache", "--dry-run")
    assert dry.returncode == 0 and "would free 2058 bytes" in dry.stdout
    real = run("action", "run", "clear_myapp_cache", "--param", "min_kib=1")
    assert real.returncode == 0 and "freed 2048 bytes" in real.stdout
    bad = run("action", "run", "clear_myapp_cache", "--param", "min_kb=1")
    assert bad.returncode == 2 and "unknown parameter(s) for clear_myapp_cache: min_kb" in bad.stderr
    not_allowed = run("action", "run", "cleanup_temp", "--dry-run")
    assert not_allowed.returncode == 2 and "not in the allow-list" in not_allowed.stderr
    audit = run("audit", "--json")
    rows = json.loads(audit.stdout)
    assert [(r["action"], r["outcome"]) for r in rows] == [
        ("cleanup_temp", "refused"), ("clear_myapp_cache", "refused"),
        ("clear_myapp_cache", "ok"), ("clear_myapp_cache", "ok")]
    assert all(r["actor"].startswith("cli:") for r in rows)
    assert (cache / "sub" / "small.bin").exists() and not (cache / "big.bin").exists()
    assert outside.read_bytes() == b"o" * 4096


@pytest.fixture
def keep_newest():
    """The "Choose first, delete after" recipe, run as the doc shows it."""
    code = blocks("python")[1]
    assert "def keep_newest(" in code
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)
    return namespace["keep_newest"]


def aged_tree(tmp_path):
    """logs/ with seven files, log0 the newest, spread over a sub-folder, plus a link out."""
    from dashfleet_core.actions import owned_folder

    logs, outside = tmp_path / "logs", tmp_path / "outside.log"
    (logs / "old").mkdir(parents=True)
    outside.write_bytes(b"o")
    for i in range(7):
        path = logs / ("old" if i >= 4 else ".") / f"log{i}"
        path.write_bytes(b"x" * (i + 1))
        os.utime(path, (1_700_000_000 - i * 3600, 1_700_000_000 - i * 3600))
    os.symlink(outside, logs / "link.log")
    return owned_folder(logs), outside


@pytest.mark.skipif(sys.platform.startswith("win"), reason="symlinks need privileges on Windows")
def test_choose_first_delete_after_recipe(tmp_path, walk_mode, keep_newest):
    root, outside = aged_tree(tmp_path)
    assert keep_newest(root, 3) == 4 + 5 + 6 + 7
    left = sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))
    assert left == ["link.log", "log0", "log1", "log2", "old"]
    assert outside.read_bytes() == b"o"


@pytest.mark.skipif(sys.platform.startswith("win"), reason="symlinks need privileges on Windows")
def test_the_recipe_leaves_a_file_that_changed_after_it_was_chosen(tmp_path, walk_mode, keep_newest):
    from dashfleet_core.actions import walk_owned

    root, outside = aged_tree(tmp_path)
    first_walk = sum(1 for _ in walk_owned(root))
    calls = []

    def check_time():  # called before each entry: the first call past the first walk starts the second
        calls.append(1)
        if len(calls) == first_walk + 1:
            (root / "old" / "log6").write_bytes(b"rewritten")

    assert keep_newest(root, 3, check_time) == 4 + 5 + 6
    assert (root / "old" / "log6").read_bytes() == b"rewritten"
    assert not (root / "log3").exists() and not (root / "old" / "log5").exists()
