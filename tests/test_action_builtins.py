"""The built-in actions on Linux: every one in dry-run, and cleanup_temp, collect_logs and the
cache cleanups for real on a temporary tree whose symlinks point outside it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile

import pytest

from dashfleet_core.actions import ActionService
from dashfleet_core.plugins import make_plugin_manager
from dashfleet_core.storage import open_storage

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux behaviour")

BUILTINS = ["cleanup_outlook", "cleanup_teams", "cleanup_temp", "collect_logs", "flush_dns", "restart_spooler"]
OLD = time.time() - 30 * 86400


@pytest.fixture
def tree(tmp_path):
    """owned/ with old and new files, a nested folder, and links to outside/ which must survive."""
    owned, outside = tmp_path / "owned", tmp_path / "outside"
    (owned / "nested" / "deeper").mkdir(parents=True)
    (outside / "dir").mkdir(parents=True)
    precious = outside / "precious.log"
    precious.write_text("outside, must survive\n")
    os.utime(precious, (OLD, OLD))
    (outside / "dir" / "inner.log").write_text("inside a linked folder\n")
    os.utime(outside / "dir" / "inner.log", (OLD, OLD))
    for rel, text, when in [("old.tmp", "x" * 100, OLD), ("nested/deeper/old2.log", "y" * 50, OLD),
                            ("new.tmp", "fresh\n", None), ("nested/new.log", "fresh log\n", None)]:
        path = owned / rel
        path.write_text(text)
        if when:
            os.utime(path, (when, when))
    os.symlink(precious, owned / "link-to-file.log")
    os.symlink(outside / "dir", owned / "link-to-dir")
    os.utime(owned / "nested" / "deeper", (OLD, OLD))
    return owned, outside


def assert_outside_untouched(owned, outside):
    assert (outside / "precious.log").read_text() == "outside, must survive\n"
    assert (outside / "dir" / "inner.log").read_text() == "inside a linked folder\n"
    assert os.path.islink(owned / "link-to-file.log") and os.path.islink(owned / "link-to-dir")
    assert os.readlink(owned / "link-to-file.log") == str(outside / "precious.log")


@pytest.fixture
def service(settings_factory):
    opened = []

    def make(overrides=None, platform=None):
        settings = settings_factory(overrides or {})
        pm = make_plugin_manager(settings, entrypoints=False)
        storage = open_storage(settings, pm)
        opened.append(storage)
        return ActionService(settings, pm, storage, platform=platform)

    yield make
    for s in opened:
        s.close()


def snapshot(path):
    return sorted((str(p.relative_to(path)), p.is_symlink()) for p in path.rglob("*"))


def test_every_builtin_is_registered(service):
    assert set(BUILTINS) <= set(service().actions)


@pytest.mark.parametrize("name", BUILTINS)
def test_every_builtin_dry_run_changes_nothing(service, tree, tmp_path, name):
    owned, outside = tree
    folders = [str(owned)]
    svc = service({
        "plugins.cleanup_temp.folders": folders,
        "plugins.cleanup_teams.folders": folders,
        "plugins.cleanup_outlook.folders": folders,
        "plugins.collect_logs.log_folders": folders,
        "plugins.collect_logs.dashfleet_log_folders": [],
        "plugins.collect_logs.output_dir": str(tmp_path / "support"),
    })
    before = snapshot(owned)
    result = svc.run(name, {"dry_run": True}, actor="test")
    assert result.dry_run and result.action == name and result.summary
    assert snapshot(owned) == before
    assert not (tmp_path / "support").exists()
    assert_outside_untouched(owned, outside)
    if name == "cleanup_outlook":
        assert result.summary == "cleanup_outlook is not supported on linux (it runs on windows, macos)"
    elif name == "flush_dns":
        assert "resolvectl flush-caches" in result.summary or "systemd-resolved is not running" in result.summary
    elif name == "restart_spooler":
        assert result.summary == "would run: systemctl restart cups.service"
    elif name == "cleanup_temp":
        assert result.ok and result.summary.startswith("would free 150 B in 2 file(s) older than 7 day(s)")
        assert result.details["links_skipped"] == 2
    elif name == "cleanup_teams":
        assert result.ok and result.summary == "would free 166 B in 4 file(s) from 1 Teams cache folder(s)"
    elif name == "collect_logs":
        assert result.ok and "would zip 2 log file(s)" in result.summary
        assert str(tmp_path / "support") in result.details["path"]
    [row] = svc.storage.audit()
    assert row.action == name and row.params["dry_run"] is True


def test_cleanup_temp_really_deletes_old_files_only(service, tree):
    owned, outside = tree
    svc = service({"plugins.cleanup_temp.folders": [str(owned)]})
    result = svc.run("cleanup_temp", {"older_than_days": 7}, actor="test")
    assert result.ok and not result.dry_run
    assert result.details["bytes_freed"] == 150 and result.details["files"] == 2
    assert result.summary.startswith("freed 150 B in 2 file(s) older than 7 day(s) from 1 temp folder(s)")
    assert not (owned / "old.tmp").exists() and not (owned / "nested" / "deeper").exists()
    assert (owned / "new.tmp").exists() and (owned / "nested" / "new.log").exists()
    assert_outside_untouched(owned, outside)
    assert svc.storage.audit()[0].outcome == "ok"


def test_cleanup_temp_zero_days_still_spares_links(service, tree):
    owned, outside = tree
    svc = service({"plugins.cleanup_temp.folders": [str(owned)]})
    result = svc.run("cleanup_temp", {"older_than_days": 0}, actor="test")
    assert result.ok and result.details["files"] == 4
    assert sorted(p.name for p in owned.iterdir()) == ["link-to-dir", "link-to-file.log"]
    assert_outside_untouched(owned, outside)


def test_cleanup_temp_through_a_linked_root_component(service, tree, tmp_path):
    """The configured folder may itself be a link (macOS /tmp): it is resolved once, up front."""
    owned, outside = tree
    alias = tmp_path / "alias"
    os.symlink(owned, alias)
    svc = service({"plugins.cleanup_temp.folders": [str(alias)]})
    result = svc.run("cleanup_temp", {"older_than_days": 7}, actor="test")
    assert result.ok and result.details["files"] == 2
    assert_outside_untouched(owned, outside)


def test_collect_logs_zips_recent_logs_and_a_summary(service, tree, tmp_path):
    owned, outside = tree
    dashlogs = tmp_path / "dashlogs"
    dashlogs.mkdir()
    (dashlogs / "server.log").write_text("dashfleet started\n")
    out_dir = tmp_path / "support"
    svc = service({
        "plugins.collect_logs.log_folders": [str(owned)],
        "plugins.collect_logs.dashfleet_log_folders": [str(dashlogs)],
        "plugins.collect_logs.output_dir": str(out_dir),
        "plugins.collect_logs.system_commands": False,
    })
    result = svc.run("collect_logs", {"days": 2}, actor="test")
    assert result.ok and not result.dry_run, result.summary
    path = result.details["path"]
    assert os.path.dirname(path) == str(out_dir) and path in result.summary
    assert os.stat(path).st_mode & 0o777 == 0o600  # copies of logs: readable by the owner only
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        assert f"system{owned}/new.tmp" in names and f"system{owned}/nested/new.log" in names
        assert f"dashfleet{dashlogs}/server.log" in names
        assert not any("precious" in n or "inner.log" in n or "old" in n for n in names)
        summary = json.loads(zf.read("summary.json"))
        assert zf.read(f"dashfleet{dashlogs}/server.log") == b"dashfleet started\n"
    assert summary["requested_by"] == "test" and summary["platform"] == "linux"
    assert summary["links_skipped"] == 2 and summary["memory"]["total"] > 0
    assert result.details["files"] == 3
    assert_outside_untouched(owned, outside)
    assert (owned / "old.tmp").exists()  # collecting changes nothing


def test_collect_logs_cuts_big_files_to_their_tail(service, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "big.log").write_bytes(b"a" * 1024 * 1024 + b"THE END")
    svc = service({
        "plugins.collect_logs.log_folders": [str(logs)],
        "plugins.collect_logs.dashfleet_log_folders": [],
        "plugins.collect_logs.output_dir": str(tmp_path / "out"),
        "plugins.collect_logs.system_commands": False,
        "plugins.collect_logs.max_file_mb": 0.5,
    })
    result = svc.run("collect_logs", {}, actor="test")
    with zipfile.ZipFile(result.details["path"]) as zf:
        data = zf.read(f"system{logs}/big.log")
    assert len(data) == 512 * 1024 and data.endswith(b"THE END")


def test_collect_logs_exports_the_journal_when_journalctl_exists(service, tmp_path):
    svc = service({
        "plugins.collect_logs.log_folders": [],
        "plugins.collect_logs.dashfleet_log_folders": [],
        "plugins.collect_logs.output_dir": str(tmp_path / "out"),
    })
    result = svc.run("collect_logs", {"days": 1}, actor="test")
    assert result.ok
    ran = result.details["commands"]["journal.txt"]
    assert ran["argv"][0] == "journalctl" and "--since" in ran["argv"]


@pytest.mark.parametrize("name", ["cleanup_teams", "cleanup_outlook"])
def test_cache_cleanups_refuse_while_the_app_runs(service, tree, name):
    owned, outside = tree
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        svc = service({f"plugins.{name}.folders": [str(owned)],
                       f"plugins.{name}.process_names": ["sleep"]}, platform="macos")
        result = svc.run(name, {}, actor="test")
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not result.ok and "is running (sleep)" in result.summary and "quit" in result.summary
    assert (owned / "old.tmp").exists() and (owned / "new.tmp").exists()


def test_cleanup_teams_empties_its_cache_folders(service, tree):
    owned, outside = tree
    svc = service({"plugins.cleanup_teams.folders": [str(owned)],
                   "plugins.cleanup_teams.process_names": ["no-such-teams-process"]})
    result = svc.run("cleanup_teams", {}, actor="test")
    assert result.ok and result.details["files"] == 4 and "Teams cache folder" in result.summary
    assert_outside_untouched(owned, outside)


def test_cleanup_outlook_never_deletes_mail_data(service, tree):
    owned, outside = tree
    (owned / "archive.pst").write_text("mail")
    (owned / "offline.OST").write_text("mail")
    svc = service({"plugins.cleanup_outlook.folders": [str(owned)],
                   "plugins.cleanup_outlook.process_names": ["no-such-outlook-process"]},
                  platform="windows")
    result = svc.run("cleanup_outlook", {}, actor="test")
    assert result.ok and result.details["kept"] == 2 and "kept 2 mail file(s)" in result.summary
    assert (owned / "archive.pst").read_text() == "mail" and (owned / "offline.OST").exists()
    assert not (owned / "old.tmp").exists()
    assert_outside_untouched(owned, outside)


def test_cleanup_teams_with_no_cache_folder_is_a_no_op(service, tmp_path):
    svc = service({"plugins.cleanup_teams.folders": [str(tmp_path / "missing")],
                   "plugins.cleanup_teams.process_names": ["no-such-teams-process"]})
    result = svc.run("cleanup_teams", {}, actor="test")
    assert result.ok and result.summary == "no Teams cache folder on this machine: nothing to do"


def test_cleanup_temp_with_the_path_based_walk(service, tree, monkeypatch):
    """Windows has no descriptor-relative deletes; the path-checked walk must behave the same."""
    from dashfleet_core.actions import files as files_mod

    monkeypatch.setattr(files_mod, "FD_WALK", False)
    owned, outside = tree
    svc = service({"plugins.cleanup_temp.folders": [str(owned)]})
    result = svc.run("cleanup_temp", {"older_than_days": 7}, actor="test")
    assert result.ok and result.details["bytes_freed"] == 150 and result.details["links_skipped"] == 2
    assert not (owned / "old.tmp").exists() and (owned / "new.tmp").exists()
    assert_outside_untouched(owned, outside)
