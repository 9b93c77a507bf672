"""`dashfleet plugin new`: every kind's package installs with pip into a throwaway venv, its
generated tests pass there, and `dashfleet plugins` there lists it; bad requests write nothing.

The throwaway venv is made without pip and sees this interpreter's site-packages through a `.pth`
line (`site.addsitedir`), so DashFleet, pydantic, pytest and the build backend are already there
and nothing is downloaded; the generated packages are installed into the venv itself, with
`--no-deps --no-build-isolation`. The venv is deleted at the end.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sysconfig
import tomllib
import venv
from pathlib import Path, PurePosixPath

import pytest

from dashfleet_core.scaffold import KINDS
from tests.conftest import dashfleet_cmd

HOOK_OF = {"collector": "register_collectors", "health": "register_health_checks",
           "action": "register_actions", "notifier": "register_notifiers",
           "exporter": "register_exporters"}


def env() -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("DASHFLEET_CONFIG", "PYTHONPATH")}
    environ.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PYTHONDONTWRITEBYTECODE="1")
    return environ


def run(args, cwd, timeout=120, **kwargs):
    return subprocess.run(args, cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout,
                          **kwargs)


def new(cwd, *args):
    return run([*dashfleet_cmd(), "plugin", "new", *args], cwd)


def throwaway_venv(path):
    """A venv without pip that also sees this interpreter's packages (after its own)."""
    venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt").create(path)
    python = path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    own = run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], path)
    assert own.returncode == 0 and own.stdout.strip(), own.stderr
    parent = sysconfig.get_paths()["purelib"]
    line = f"import site; site.addsitedir({parent!r})\n"
    (Path(own.stdout.strip()) / "_dashfleet_test_parent.pth").write_text(line)
    return python


def test_every_kind_installs_and_its_generated_tests_pass(tmp_path):
    packages = {}
    for kind in KINDS:
        r = new(tmp_path, f"sc-{kind}", "--kind", kind, "--dir", str(tmp_path / "src" / kind))
        assert r.returncode == 0, r.stderr
        packages[kind] = tmp_path / "src" / kind
        assert f"wrote the {kind} plugin 'sc_{kind}'" in r.stdout
    where = tmp_path / "venv"
    try:
        python = throwaway_venv(where)
        r = run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                 *map(str, packages.values())], tmp_path, timeout=300)
        assert r.returncode == 0, (r.stdout + r.stderr + "\n(the build backend comes from this "
                                   "environment: `pip install -e '.[test]'` brings setuptools>=70.1)")
        # One pytest run over every package's tests (a pytest start-up costs seconds here), from
        # outside the package folders so the tests import the installed copies; the fixtures
        # come from DashFleet's pytest11 entry point.
        r = run([str(python), "-m", "pytest", "-v", "-p", "no:cacheprovider", "-W", "error",
                 *(str(folder / "tests") for folder in packages.values())], tmp_path)
        assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
        for kind in KINDS:
            outcomes = re.findall(rf"test_sc_{kind}\.py::\S+ ([A-Z]+)", r.stdout)
            assert outcomes and set(outcomes) == {"PASSED"}, (kind, r.stdout)
        r = run([str(python), "-c", "from dashfleet_core.cli import main; main()", "plugins", "--json"],
                tmp_path)
        assert r.returncode == 0, r.stderr
        listed = {p["name"]: p for p in json.loads(r.stdout)}
        for kind in KINDS:
            plugin = listed[f"sc_{kind}"]
            assert (plugin["source"], plugin["enabled"], plugin["version"]) == ("entrypoint", True, "0.1.0")
            assert plugin["hooks"] == [HOOK_OF[kind]]
    finally:
        shutil.rmtree(where, ignore_errors=True)
    assert not where.exists()


def test_the_package_is_complete(tmp_path):
    r = new(tmp_path, "disk-age", "--kind", "collector")
    assert r.returncode == 0, r.stderr
    root = tmp_path / "dashfleet-disk-age"
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert files == ["README.md", "dashfleet_disk_age/__init__.py", "dashfleet_disk_age/plugin.py",
                     "pyproject.toml", "tests/test_disk_age.py"]
    project = tomllib.loads((root / "pyproject.toml").read_text())
    assert project["project"]["name"] == "dashfleet-disk-age"
    assert project["project"]["entry-points"]["dashfleet"] == {"disk_age": "dashfleet_disk_age.plugin"}
    plugin = (root / "dashfleet_disk_age" / "plugin.py").read_text()
    assert 'PLUGIN_NAME = "disk_age"' in plugin and "settings.plugin_settings(PLUGIN_NAME, Settings)" in plugin
    assert "[plugins.disk_age]" in (root / "README.md").read_text()
    for path in root.rglob("*"):
        if path.is_file():
            assert "$" not in path.read_text(), path  # every placeholder filled in
            if path.suffix == ".py":
                compile(path.read_text(), str(path), "exec")


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_reads_its_settings_in_its_register_hook(tmp_path, kind):
    """The one way (docs/plugin-hooks.md, "Settings"): `register_*(register, settings)` reads the
    table with `settings.plugin_settings` and hands it on; no `configure`, no `context.options`."""
    r = new(tmp_path, f"sc-{kind}", "--kind", kind)
    assert r.returncode == 0, r.stderr
    plugin = (tmp_path / f"dashfleet-sc-{kind}" / f"dashfleet_sc_{kind}" / "plugin.py").read_text()
    hook = re.search(rf"^@hookimpl\ndef {HOOK_OF[kind]}\(register, settings\):\n((?:    .*\n)+)", plugin, re.M)
    assert hook, plugin
    assert "settings.plugin_settings(PLUGIN_NAME, Settings)" in hook.group(1)
    assert "configure(" not in plugin and "context.options" not in plugin


@pytest.mark.parametrize("args, said", [
    (["Disk Age", "--kind", "collector"], "cannot be a plugin name"),
    (["9lives", "--kind", "collector"], "cannot be a plugin name"),
    (["cpu", "--kind", "collector"], "a plugin named 'cpu' already exists"),
    (["csv", "--kind", "exporter"], "a plugin named 'csv' already exists"),
    (["mine", "--kind", "storage"], "'storage' is not one of"),
    (["mine"], "Missing option '--kind'"),
])
def test_a_bad_request_is_refused_and_writes_nothing(tmp_path, args, said):
    r = new(tmp_path, *args)
    assert r.returncode == 2, r.stdout + r.stderr
    assert said in r.stderr and "Traceback" not in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_is_never_overwritten(tmp_path):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    r = new(tmp_path, "mine", "--kind", "notifier", "--dir", str(target))
    assert r.returncode == 2 and "already exists and is not an empty folder" in r.stderr, r.stderr
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    assert (target / "keep.txt").read_text() == "mine"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert new(tmp_path, "mine", "--kind", "notifier", "--dir", str(empty)).returncode == 0
    assert (empty / "dashfleet_mine" / "plugin.py").exists()


def test_every_template_is_package_data():
    """A wheel of DashFleet carries the templates (pyproject's package-data covers each file)."""
    import dashfleet_core.scaffold as scaffold

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert "dashfleet_core.scaffold" in project["tool"]["setuptools"]["packages"]
    patterns = project["tool"]["setuptools"]["package-data"]["dashfleet_core"]
    base = Path(scaffold.__file__).parent
    for kind in [*KINDS, "common"]:
        for path in (base / "templates" / kind).iterdir():
            relative = PurePosixPath(path.relative_to(base.parent).as_posix())
            assert any(relative.match(p) for p in patterns), relative
