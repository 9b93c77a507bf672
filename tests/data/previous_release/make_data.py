"""Write the data folders of tests/test_upgrade.py with the release before organisations.

This script is run with the previous release's code on the path, not the current one: from a
checkout of commit 74a7619 (the last commit before issue 14's foundation), e.g.

    git archive 74a7619 | tar -x -C /tmp/prev/src
    mkdir /tmp/prev/path && cd /tmp/prev/path && ln -s ../src/dashfleet_core dashfleet_core \\
        && ln -s ../src/plugins dashfleet_plugins && ln -s ../src/web dashfleet_web
    PYTHONPATH=/tmp/prev/path python tests/data/previous_release/make_data.py tests/data/previous_release

It serves that release's app with the seed's tokens and feeds it as its agents and operators did
(the FLEET_TOKEN in the body and in the header, a maintenance window, an action), into a SQLite file
and a JSON file. The files it writes are committed; the test serves copies with the current code.
"""

from __future__ import annotations

import sys
from pathlib import Path

FLEET_TOKEN = "upgrade-fleet-token-0123456789"
ACTION_TOKEN = "upgrade-action-token-0123456789"
MACHINES = ("old-pc-1", "old-pc-2", "old-srv-1")


def fill(url: str, data_dir: Path) -> None:
    from dashfleet_web.app import create_app

    app = create_app({"storage.url": url, "server.data_dir": str(data_dir), "server.token": FLEET_TOKEN,
                      "actions.token": ACTION_TOKEN, "server.report_self": False}, start=False)
    client = app.test_client()
    for n, machine in enumerate(MACHINES):
        for seq in range(1, 5):
            report = {"machine_id": machine, "hostname": f"{machine}.lan", "seq": seq,
                      "metrics": {"cpu.percent": 99.0 if machine == "old-srv-1" else 10.0 + n + seq,
                                  "memory.percent": 40.0, "disk.percent": 55.0}}
            if seq % 2:  # the seed's agents put the token in the body
                answer = client.post("/api/fleet/report", json={**report, "token": FLEET_TOKEN})
            else:
                answer = client.post("/api/fleet/report", json=report,
                                     headers={"Authorization": f"Bearer {FLEET_TOKEN}"})
            assert answer.status_code == 201, answer.get_json()
    operator = {"Authorization": f"Bearer {ACTION_TOKEN}"}
    answer = client.post("/api/fleet/old-pc-2/maintenance", json={"minutes": 525600, "reason": "old window"},
                         headers=operator)
    assert answer.status_code == 201, answer.get_json()
    answer = client.post("/api/action", json={"action": "flush_dns", "params": {"dry_run": True}}, headers=operator)
    assert answer.status_code < 500, answer.get_json()
    app.extensions["dashfleet"].stop()


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name in ("dashfleet.db", "fleet_state.json"):
        (out / name).unlink(missing_ok=True)
    fill(f"sqlite:///{out}/dashfleet.db", out)
    fill(f"json:///{out}/fleet_state.json", out)
    for leftover in ("fleet_token", "dashfleet.db-wal", "dashfleet.db-shm"):
        (out / leftover).unlink(missing_ok=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
