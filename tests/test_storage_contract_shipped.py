"""The storage contract suite as DashFleet ships it (`dashfleet_core.testing.StorageContract`), used
the way a third-party backend's author uses it: a test module of their own, run by pytest in a
separate process, against a backend that is named in `[plugins] modules` rather than installed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

# a backend that breaks the contract: kv_add overwrites a live value and says it created it
FORGETFUL_BACKEND = '''
from dashfleet_core import hookimpl
from dashfleet_plugins.storage.json_file import JsonStorage


class ForgetfulStorage(JsonStorage):
    scheme = "forgetful"

    def kv_add(self, namespace, key, value, **kwargs):
        self.kv_put(namespace, key, value, **kwargs)
        return True


@hookimpl
def register_storage(register):
    register("forgetful", lambda url, settings: ForgetfulStorage(url, settings))
'''

FORGETFUL_TESTS = '''
import pytest

from dashfleet_core.testing import StorageContract


class TestForgetful(StorageContract):
    storage_config = {"plugins": {"modules": ["forgetful_backend"]}}

    @pytest.fixture
    def storage_url(self, tmp_path):
        return f"forgetful:///{tmp_path}/state.json"
'''


def run_pytest(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DASHFLEET_CONFIG"}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=300)


def test_a_backend_breaking_the_contract_fails_it_with_pytest_s_explanation(tmp_path):
    """Only the broken method's test fails; the several-processes test passes, its processes
    finding the backend module where the test run found it (pytest runs from another folder)."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "forgetful_backend.py").write_text(FORGETFUL_BACKEND)
    (tmp_path / "tests" / "test_forgetful.py").write_text(FORGETFUL_TESTS)
    r = run_pytest(tmp_path, "-k", "kv_add or several_processes", "tests/test_forgetful.py")
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "1 failed, 1 passed" in out, out
    failed = "tests/test_forgetful.py::TestForgetful::test_kv_add_creates_only_when_absent_or_expired"
    assert f"FAILED {failed}" in out, out
    # the contract's plain assert was rewritten by pytest: the failing call is spelled out
    assert "assert True is False" in out and "where True = " in out, out


def test_a_subclass_without_storage_url_is_told_what_to_define(tmp_path):
    (tmp_path / "test_nourl.py").write_text(textwrap.dedent('''
        from dashfleet_core.testing import StorageContract

        class TestNoUrl(StorageContract):
            pass
    '''))
    r = run_pytest(tmp_path, "-k", "test_machines_seen_since", "test_nourl.py")
    out = r.stdout + r.stderr
    assert r.returncode == 1 and "1 error" in out, out
    assert "TestNoUrl: define a `storage_url` fixture returning the URL of a fresh, empty storage" in out


def test_loading_the_pytest_plugin_imports_neither_the_suite_nor_flask():
    """`dashfleet_core.testing` is loaded by every pytest run where DashFleet is installed."""
    code = ("import sys, dashfleet_core.testing as t; "
            "heavy = ('flask', 'dashfleet_core.testing.storage_contract'); "
            "print(sorted(m for m in heavy if m in sys.modules)); "
            "print(t.StorageContract.__module__)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["[]", "dashfleet_core.testing.storage_contract"]
