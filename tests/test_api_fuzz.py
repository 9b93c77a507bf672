"""Generated calls against every operation of the OpenAPI document (schemathesis), with the
credentials each one needs, on the real app and a real SQLite file: no answer is a 5xx, and every
answer matches the document (status code, content type, body, headers). Bounded and seeded, so the
run is the same each time."""

from __future__ import annotations

import shutil
import tempfile

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from dashfleet_core.fleet import Fleet
from dashfleet_core.plugins import make_plugin_manager
from dashfleet_web.app import create_app

FLEET_TOKEN = "fleet-token-for-the-generated-calls"
ACTION_TOKEN = "action-token-for-the-generated-calls"
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.response_headers_conformance,
]


def _app(folder: str):
    from dashfleet_core.config import load_settings

    config = load_settings(None, env={}, overrides={
        "storage.url": f"sqlite:///{folder}/dashfleet.db", "server.data_dir": folder,
        "server.token": FLEET_TOKEN, "actions.token": ACTION_TOKEN, "server.report_self": False,
        # nothing may run on the test machine: every action call is refused after its checks
        "actions.allowed": [],
    })
    fleet = Fleet(config, make_plugin_manager(config))
    return fleet, create_app(fleet=fleet, start=False)


# The schema is read when the module is collected (schemathesis parametrizes from it), so the app
# is built then, in a folder of its own that the module's last fixture removes.
_FOLDER = tempfile.mkdtemp(prefix="dashfleet-fuzz-")
_FLEET, _APP = _app(_FOLDER)
schema = schemathesis.openapi.from_wsgi("/api/openapi.json", _APP,
                                        headers={"Authorization": f"Bearer {ACTION_TOKEN}"})


@pytest.fixture(scope="module", autouse=True)
def _clean_up():
    yield
    _FLEET.stop()
    shutil.rmtree(_FOLDER, ignore_errors=True)


def _credential(case) -> dict[str, str]:
    """The token the operation's security names (schemathesis sends none by itself): the
    FLEET_TOKEN to report, else the operator's ACTION_TOKEN (every scope, organisation `default`)."""
    security = case.operation.definition.raw.get("security") or []
    names = {name for requirement in security for name in requirement}
    if "fleetToken" in names:
        return {"Authorization": f"Bearer {FLEET_TOKEN}"}
    if names:
        return {"Authorization": f"Bearer {ACTION_TOKEN}"}
    return {}


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_generated_call_gets_a_5xx_or_an_answer_the_document_does_not_describe(case):
    case.call_and_validate(headers={**(case.headers or {}), **_credential(case)}, checks=CHECKS)
