"""ActionService: allow-list, strict parameters, platform check, time limit, rate limit, and an
audit row for every attempt, against a real SQLite file."""

from __future__ import annotations

import threading

import pytest
from pydantic import BaseModel, ConfigDict, Field, model_validator

from dashfleet_core import hookimpl
from dashfleet_core.actions import (
    ActionParams,
    ActionRefused,
    ActionService,
    BaseAction,
    run_command,
)
from dashfleet_core.plugins import make_plugin_manager
from dashfleet_core.storage import open_storage

RELEASE = threading.Event()


class EchoParams(ActionParams):
    count: int = Field(default=1, ge=1, le=5)
    word: str = "hi"
    token: str = ""


class Echo(BaseAction):
    name = "echo_test"
    description = "Echo its parameters back"
    changes_machine = False
    Params = EchoParams

    def run(self, params, context):
        return self.result(True, " ".join([params.word] * params.count), params, actor=context.actor)


class Slow(BaseAction):
    name = "slow_test"
    description = "Waits until released, ignoring its deadline"
    Params = ActionParams

    def run(self, params, context):
        RELEASE.wait(30)
        return self.result(True, "released", params)


class Broken(BaseAction):
    name = "broken_test"
    description = "Raises"
    Params = ActionParams

    def run(self, params, context):
        raise RuntimeError("boom")


class ExplodingParams(ActionParams):
    @model_validator(mode="before")
    @classmethod
    def _explode(cls, data):
        raise RuntimeError("a plugin bug in parameter checking")  # not a ValueError: pydantic lets it out


class ExplodingCheck(BaseAction):
    name = "exploding_check_test"
    description = "Its parameter check crashes"
    Params = ExplodingParams

    def run(self, params, context):
        return self.result(True, "never", params)


class NoDescription(BaseAction):
    name = "nodesc_test"
    description = ""


class TestPlugin:
    @hookimpl
    def register_actions(self, register):
        for cls in (Echo, Slow, Broken, ExplodingCheck, NoDescription):
            register(cls())


@pytest.fixture
def make_service(settings_factory):
    opened = []
    RELEASE.clear()

    def make(overrides=None, platform=None):
        settings = settings_factory(overrides or {})
        pm = make_plugin_manager(settings, entrypoints=False, extra=[("testactions", TestPlugin())])
        storage = open_storage(settings, pm)
        opened.append(storage)
        return ActionService(settings, pm, storage, platform=platform)

    yield make
    RELEASE.set()
    for s in opened:
        s.close()


def test_runs_a_registered_action_and_audits_it(make_service):
    svc = make_service()
    result = svc.run("echo_test", {"count": 2, "word": "ok"}, actor="cli:tester")
    assert result.ok and result.summary == "ok ok" and result.details["actor"] == "cli:tester"
    [row] = svc.storage.audit()
    assert (row.actor, row.action, row.outcome) == ("cli:tester", "echo_test", "ok")
    assert row.params == {"dry_run": False, "count": 2, "word": "ok", "token": "***"}


@pytest.mark.parametrize("params, field", [
    ({"cuont": 2}, "cuont"),
    ({"count": "2"}, "count"),
    ({"count": 9}, "count"),
    ({"dry_run": "yes"}, "dry_run"),
    ({"count": 2.5}, "count"),
])
def test_bad_parameters_are_refused_with_their_name(make_service, params, field):
    svc = make_service()
    with pytest.raises(ActionRefused) as err:
        svc.run("echo_test", params, actor="t")
    assert err.value.status == 422
    assert field in err.value.message and err.value.extra["fields"] == [field]
    [row] = svc.storage.audit()
    assert row.outcome == "refused" and row.details["status"] == 422


def test_unknown_action_lists_the_available_ones(make_service):
    svc = make_service()
    with pytest.raises(ActionRefused) as err:
        svc.run("format_disk", {}, actor="t")
    assert err.value.status == 400 and "cleanup_temp" in err.value.extra["available"]
    assert "format_disk" in err.value.message
    assert svc.storage.audit()[0].action == "format_disk"


def test_allow_list_refuses_others(make_service):
    svc = make_service({"actions.allowed": ["echo_test"]})
    assert svc.run("echo_test", {}, actor="t").ok
    with pytest.raises(ActionRefused) as err:
        svc.run("cleanup_temp", {"dry_run": True}, actor="t")
    assert err.value.status == 403 and "[actions] allowed" in err.value.message
    assert [r.outcome for r in svc.storage.audit()] == ["refused", "ok"]


def test_unsupported_platform_is_a_clear_result(make_service):
    svc = make_service(platform="macos")
    result = svc.run("restart_spooler", {"dry_run": True}, actor="t")
    assert not result.ok and result.summary.startswith("restart_spooler is not supported on macos")
    assert svc.storage.audit()[0].outcome == "unsupported"


def test_time_limit_stops_waiting(make_service):
    svc = make_service({"actions.timeout_seconds": 0.5})
    result = svc.run("slow_test", {}, actor="t")
    assert not result.ok and "time limit" in result.summary
    assert svc.storage.audit()[0].outcome == "timeout"


def test_an_overrunning_action_cannot_be_started_twice(make_service):
    svc = make_service({"actions.timeout_seconds": 0.3})
    assert "time limit" in svc.run("slow_test", {}, actor="t").summary
    with pytest.raises(ActionRefused) as err:
        svc.run("slow_test", {}, actor="t")
    assert err.value.status == 409 and "already running" in err.value.message
    assert svc.run("echo_test", {}, actor="t").ok  # other actions are not blocked
    RELEASE.set()
    for thread in threading.enumerate():
        if thread.name == "action-slow_test":
            thread.join(10)
    assert svc.run("slow_test", {}, actor="t").ok
    assert [r.outcome for r in svc.storage.audit()] == ["ok", "ok", "refused", "timeout"]


def test_an_action_that_raises_is_a_failed_result(make_service):
    svc = make_service()
    result = svc.run("broken_test", {}, actor="t")
    assert not result.ok and "RuntimeError: boom" in result.summary
    assert svc.storage.audit()[0].outcome == "error"


def test_broken_registration_is_left_out(make_service):
    svc = make_service()
    assert "nodesc_test" not in svc.actions and "no description" in svc.rejected["nodesc_test"]


class PlainParams(BaseModel):  # not an ActionParams: lax types, no dry_run
    count: int = 1


class LooseParams(ActionParams):
    model_config = ConfigDict(strict=False)
    count: int = 1


class Wipe(BaseAction):
    name = "wipe_test"
    description = "Changes the machine, with a plain pydantic model for its parameters"
    Params = PlainParams

    def run(self, params, context):
        return self.result(True, f"wiped {params.count!r}", params)


class LooseWipe(Wipe):
    name = "loose_wipe_test"
    Params = LooseParams


class LoosePlugin:
    @hookimpl
    def register_actions(self, register):
        register(Wipe())
        register(LooseWipe())
        register(Echo())


def test_params_that_are_not_strict_action_params_are_refused_at_load(settings_factory, caplog):
    """Before: a plain model was accepted, so {"count": "5"} ran as 5 and dry_run was refused."""
    settings = settings_factory()
    pm = make_plugin_manager(settings, entrypoints=False, extra=[("loose-plugin", LoosePlugin())])
    with open_storage(settings, pm) as storage:
        svc = ActionService(settings, pm, storage)
        assert "wipe_test" not in svc.actions and "loose_wipe_test" not in svc.actions
        assert "wipe_test" not in {e.name for e in svc.catalogue()}
        assert svc.rejected["wipe_test"] == (
            "plugin 'loose-plugin': 'Params' (PlainParams) must derive from "
            "dashfleet_core.actions.ActionParams (strict types, unknown parameters refused, dry_run "
            "built in), not from BaseModel: write class PlainParams(ActionParams)")
        assert "strict=True and extra='forbid'" in svc.rejected["loose_wipe_test"]
        assert "LooseParams" in svc.rejected["loose_wipe_test"]
        logged = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
        assert any("'wipe_test'" in m and "'loose-plugin'" in m and "ActionParams" in m for m in logged)
        with pytest.raises(ActionRefused) as err:
            svc.run("wipe_test", {"count": "5"}, actor="t")
        assert err.value.status == 400 and "unknown action 'wipe_test'" in err.value.message
        assert svc.run("echo_test", {"count": 2}, actor="t").ok, "the plugin's other action still runs"


def test_rate_limit_per_caller(make_service):
    svc = make_service({"actions.rate_limit_per_minute": 3})
    for _ in range(3):
        svc.run("echo_test", {}, actor="api:10.0.0.1")
    with pytest.raises(ActionRefused) as err:
        svc.run("echo_test", {}, actor="api:10.0.0.1")
    assert err.value.status == 429 and "3 action calls a minute" in err.value.message
    assert svc.run("echo_test", {}, actor="api:10.0.0.2").ok  # another caller is not limited
    assert [r.outcome for r in svc.storage.audit()] == ["ok", "refused", "ok", "ok", "ok"]


def test_refused_authorisation_is_audited_and_not_counted_against_the_rate_limit(make_service):

    def deny():
        raise ActionRefused(401, "wrong token")

    svc = make_service({"actions.rate_limit_per_minute": 3})
    for _ in range(5):
        with pytest.raises(ActionRefused) as err:
            svc.run("echo_test", {"token": "guess"}, actor="t", authorize=deny)
        assert err.value.status == 401, "wrong guesses are not the authorised caller's 429"
    rows = svc.storage.audit()
    assert len(rows) == 5
    assert rows[0].outcome == "refused" and rows[0].details["status"] == 401 and rows[0].params["token"] == "***"
    assert svc.run("echo_test", {}, actor="t").ok, "the authorised caller keeps its own budget"


def test_a_crash_anywhere_in_an_attempt_still_leaves_exactly_one_audit_row(make_service):
    svc = make_service()
    with pytest.raises(RuntimeError):
        svc.run("exploding_check_test", {"dry_run": True}, actor="api:10.0.0.9")
    [row] = svc.storage.audit()
    assert row.outcome == "error" and row.actor == "api:10.0.0.9" and row.action == "exploding_check_test"
    assert row.params == {"dry_run": True} and "RuntimeError" in row.details["error"]


# --- the safe subprocess helper ------------------------------------------------------------------


def test_run_command_uses_no_shell(tmp_path):
    marker = tmp_path / "pwned"
    done = run_command(["echo", f"hello; touch {marker}"], timeout=10)
    assert done.ok and done.stdout.strip() == f"hello; touch {marker}"
    assert not marker.exists()
    with pytest.raises(TypeError):
        run_command("echo hello", timeout=10)  # a command line is not accepted


def test_run_command_timeout_and_missing_program():
    done = run_command(["sleep", "30"], timeout=0.5)
    assert not done.ok and "killed after" in done.error
    missing = run_command(["no-such-program-dashfleet"], timeout=5)
    assert missing.returncode is None and "not found" in missing.error


def test_run_command_does_not_pass_our_secrets(monkeypatch):
    monkeypatch.setenv("ACTION_TOKEN", "s3cret-value")
    done = run_command(["env"], timeout=10)
    assert done.ok and "s3cret-value" not in done.stdout and "PATH=" in done.stdout
