"""Alerting as one package owned by the `Fleet` (issue 13): no import cycle through it, callers reach
the service as `fleet.alerting` (never by looking the plugin up by name), blocking its hooks keeps
working as before, and statuses are ranked in one place (`dashfleet_core.models`).

The import and source checks read the installed packages' source with `ast`, imports inside
functions included, so they hold for what `pip install` ships."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from conftest import dashfleet_cmd
from dashfleet_core.alerting import Alerting
from dashfleet_core.fleet import Fleet
from dashfleet_core.models import STATUS_ORDER, Report, utcnow
from dashfleet_core.plugins import make_plugin_manager

PACKAGES = ("dashfleet_core", "dashfleet_web", "dashfleet_plugins", "dashfleet_agent")


def package_modules(package: str) -> dict[str, Path]:
    """Every module of an installed package, by dotted name."""
    root = Path(importlib.util.find_spec(package).origin).parent
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join([package, *parts])] = path
    return found


def run_time_nodes(tree: ast.AST):
    """Every node that can run: all of them but the bodies of `if TYPE_CHECKING:`."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in [child, *run_time_nodes(child)])
            continue
        yield node
        yield from run_time_nodes(node)


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of `known` that `name` imports anywhere it runs (inside functions too). `from
    package import submodule` counts as importing the submodule (the package's own `__init__` is
    loaded first by Python in any case)."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in run_time_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            submodules = [f"{module}.{alias.name}" for alias in node.names if f"{module}.{alias.name}" in known]
            targets = submodules if len(submodules) == len(node.names) else [module, *submodules]
        else:
            continue
        found.update(t for t in targets if t in known and t != name)
    return found


def cycles_through(graph: dict[str, set[str]], start: str) -> list[list[str]]:
    """Import paths that lead from `start` back to `start`."""
    found, stack = [], [(start, [start])]
    seen = set()
    while stack:
        node, path = stack.pop()
        for nxt in sorted(graph.get(node, ())):
            if nxt == start:
                found.append(path + [start])
            elif nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, path + [nxt]))
    return found


def test_no_import_cycle_runs_through_alerting():
    modules = package_modules("dashfleet_core")
    graph = {name: imports_of(name, path, set(modules)) for name, path in modules.items()}
    alerting = [name for name in modules if name.startswith("dashfleet_core.alerting")]
    cycles = [cycle for name in alerting for cycle in cycles_through(graph, name)]
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)
    assert "dashfleet_core.alerting.service" in alerting, "alerting is a package"


def test_nothing_looks_the_alerting_plugin_up_by_name():
    """Callers reach the service as `fleet.alerting`, not `pm.get_plugin("alerting")`."""
    lookups = []
    for package in PACKAGES:
        for name, path in package_modules(package).items():
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr == "get_plugin" and node.args
                        and isinstance(node.args[0], ast.Constant) and node.args[0].value == "alerting"):
                    lookups.append(f"{name}:{node.lineno}")
    assert lookups == []


def sustained(fleet: Fleet, machine_id: str, cpu: float, samples: int = 3) -> None:
    for seq in range(1, samples + 1):
        assert fleet.ingest([Report(machine_id=machine_id, seq=seq, metrics={"cpu.percent": cpu})]) == [True]


def kinds(fleet: Fleet, machine_id: str) -> list[str]:
    return [e.kind for e in fleet.storage.events(machine_id=machine_id)]


def test_the_fleet_owns_its_alerting_service_and_registers_its_hooks(settings_factory):
    fleet = Fleet(settings_factory({"server.report_self": False}))
    try:
        assert isinstance(fleet.alerting, Alerting) and fleet.alerting.fleet is fleet
        assert fleet.pm.is_registered(fleet.alerting)
        sustained(fleet, "pc-1", 99)
        assert kinds(fleet, "pc-1") == ["status_changed"], "report_stored reached fleet.alerting"
    finally:
        fleet.stop()


def test_blocked_alerting_stores_no_events_and_maintenance_still_works(settings_factory):
    """How alerting is switched off today: the host blocks the name before the Fleet registers it
    (`[plugins] disabled` does not know it, see the next test). Reports store no alert events,
    batches read no alert state, and the maintenance API still answers through `fleet.alerting`."""
    from dashfleet_web.app import create_app

    settings = settings_factory({"server.report_self": False, "actions.token": "action-token-blocked-alerting"})
    pm = make_plugin_manager(settings)
    pm.set_blocked("alerting")
    fleet = Fleet(settings, pm)
    app = create_app(settings, fleet=fleet, start=False)
    try:
        assert not pm.is_registered(fleet.alerting)
        sustained(fleet, "pc-1", 99)
        assert fleet.ingest([Report(machine_id=f"pc-{i}", seq=9, metrics={"cpu.percent": 99})
                             for i in range(2, 5)]) == [True] * 3
        assert kinds(fleet, "pc-1") == [] and fleet.storage.kv_list("alert_state") == {}
        client = app.test_client()
        auth = {"Authorization": "Bearer action-token-blocked-alerting"}
        started = client.post("/api/fleet/pc-1/maintenance", json={"minutes": 5, "reason": "patch"}, headers=auth)
        assert started.status_code == 201, started.get_json()
        assert fleet.alerting.maintenance_for("pc-1") is not None
        assert client.delete("/api/fleet/pc-1/maintenance", headers=auth).status_code == 200
        assert kinds(fleet, "pc-1") == ["maintenance_ended", "maintenance_started"]
    finally:
        fleet.stop()


def test_disabling_alerting_in_config_is_refused_as_before(tmp_path):
    """`alerting` is not a plugin that `[plugins] disabled` knows: the config is refused (exit 2)
    naming it, as before the package move, rather than silently ignored."""
    config = tmp_path / "dashfleet.toml"
    config.write_text('[plugins]\ndisabled = ["alerting"]\n', encoding="utf-8")
    result = subprocess.run([*dashfleet_cmd(), "config", "check", "--config", str(config)],
                            capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "unknown plugin(s) 'alerting'" in result.stderr


def test_one_status_ranking():
    from dashfleet_core.models import STATUSES, status_rank

    assert STATUSES == ("ok", "warn", "critical")
    assert [STATUS_ORDER[s] for s in STATUSES] == [0, 1, 2]
    assert [status_rank(s) for s in (None, "ok", "warn", "critical", "silent")] == [0, 0, 1, 2, 3]
    with pytest.raises(ValueError, match="unknown status 'bad': expected one of ok, warn, critical, silent"):
        status_rank("bad")


def ranking_literals(tree: ast.AST) -> list[int]:
    """Lines holding a status ranking of their own: a dict from status names to ints, or the
    statuses spelled out in order."""
    names = set(STATUS_ORDER) | {"silent"}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            keys = [k.value for k in node.keys if isinstance(k, ast.Constant)]
            values = [v.value for v in node.values if isinstance(v, ast.Constant)]
            if len(keys) >= 2 and set(keys) <= names and all(type(v) is int for v in values) \
                    and sorted(values) == list(range(min(values), min(values) + len(values))):
                found.append(node.lineno)
        elif isinstance(node, (ast.Tuple, ast.List)):
            items = [e.value for e in node.elts if isinstance(e, ast.Constant)]
            if items[:3] == ["ok", "warn", "critical"]:
                found.append(node.lineno)
    return found


def test_no_module_keeps_its_own_status_ranking():
    """Scoring, the tracker, messages, the fleet view and the metrics rank statuses through
    `dashfleet_core.models`; only it spells the order out."""
    own = []
    for package in PACKAGES:
        for name, path in package_modules(package).items():
            if name == "dashfleet_core.models":
                continue
            own += [f"{name}:{line}" for line in ranking_literals(ast.parse(path.read_text(encoding="utf-8")))]
    assert own == []


def test_the_shim_for_notifier_plugins_still_imports():
    """docs/alerting.md told notifier authors to use `dashfleet_core.alerting_messages`."""
    from dashfleet_core import alerting_messages
    from dashfleet_core.alerting import messages

    assert alerting_messages.structured is messages.structured
    assert alerting_messages.links_of is messages.links_of
    assert alerting_messages.RANK == {"ok": 0, "warn": 1, "critical": 2, "silent": 3}


def test_a_batch_of_reports_reads_alert_state_once_through_fleet_alerting(settings_factory):
    """Fleet.store wraps a batch in `fleet.alerting.batch`: a status change inside it is seen."""
    fleet = Fleet(settings_factory({"server.report_self": False, "health.sustain": 2}))
    try:
        now = utcnow()
        batch = [Report(machine_id=m, seq=s, collected_at=now - timedelta(seconds=10 - s),
                        metrics={"cpu.percent": 99}) for s in (1, 2) for m in ("a", "b")]
        assert fleet.ingest(batch) == [True] * 4
        assert kinds(fleet, "a") == kinds(fleet, "b") == ["status_changed"]
    finally:
        fleet.stop()
