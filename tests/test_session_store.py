"""Dashboard sessions as stored (dashfleet_core/accounts/sessions.py): a session is live while both
its record and its activity note are, and a note written after a logout brings nothing back.
Real SQLite file."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dashfleet_core.accounts.sessions import NAMESPACE, SEEN_NAMESPACE
from dashfleet_core.accounts.scope import SERVER_SCOPE
from dashfleet_core.fleet import Fleet
from dashfleet_core.models import utcnow


@pytest.fixture
def accounts(settings_factory):
    fleet = Fleet(settings_factory({"server.public_read": False, "server.report_self": False}))
    yield fleet.accounts
    fleet.stop()


def test_a_session_is_live_while_its_record_and_its_activity_both_are(accounts):
    accounts.users.add("ana", "a long session passphrase", org="default", role="viewer")
    sid, session = accounts.sessions.create("ana", 0, "default")
    assert accounts.sessions.get(sid).username == "ana"
    storage = accounts.storage
    # the idle timeout passed: the activity note expired, the record alone is not a session
    seen = storage.kv_get(SEEN_NAMESPACE, session.key, org=SERVER_SCOPE)
    storage.kv_put(SEEN_NAMESPACE, session.key, seen, org=SERVER_SCOPE,
                   expires_at=utcnow() - timedelta(seconds=1))
    assert accounts.sessions.get(sid) is None


def test_a_deleted_session_stays_deleted_even_if_its_activity_is_written_after(accounts):
    """A request on another worker may note the activity just after the logout: it brings
    nothing back, since the record is never rewritten."""
    accounts.users.add("ben", "a long session passphrase", org="default", role="viewer")
    sid, session = accounts.sessions.create("ben", 0, "default")
    accounts.sessions.delete(session.key)
    accounts.storage.kv_put(SEEN_NAMESPACE, session.key, {"at": utcnow().isoformat(), "org": "default"},
                            org=SERVER_SCOPE, expires_at=utcnow() + timedelta(hours=1))
    assert accounts.sessions.get(sid) is None


def test_delete_user_ends_every_session_of_that_user_only(accounts):
    for name in ("cy", "di"):
        accounts.users.add(name, "a long session passphrase", org="default", role="viewer")
    cy1, _ = accounts.sessions.create("cy", 0, "default")
    cy2, _ = accounts.sessions.create("cy", 0, "default")
    di, _ = accounts.sessions.create("di", 0, "default")
    assert accounts.sessions.delete_user("cy") == 2
    assert accounts.sessions.get(cy1) is None and accounts.sessions.get(cy2) is None
    assert accounts.sessions.get(di).username == "di"
    assert len(accounts.storage.kv_list(NAMESPACE, org=SERVER_SCOPE)) == 1  # di's
    assert len(accounts.storage.kv_list(SEEN_NAMESPACE, org=SERVER_SCOPE)) == 1


def test_switching_organisation_is_kept_with_the_activity(accounts):
    accounts.orgs.create("Acme")
    accounts.users.add("eve", "a long session passphrase", org="default", role="viewer")
    accounts.users.set_role("eve", "acme", "viewer")
    sid, session = accounts.sessions.create("eve", 0, "default")
    accounts.sessions.switch_org(session, "acme")
    assert accounts.sessions.get(sid).org == "acme"
