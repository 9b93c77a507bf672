"""TOTP enrolment and checks (dashfleet_core/accounts/totp.py) on a real SQLite file."""

from __future__ import annotations

import pyotp
import pytest

from dashfleet_core.accounts import Accounts, AccountError
from dashfleet_core.plugins import make_plugin_manager
from dashfleet_core.storage import open_storage


@pytest.fixture
def accounts(settings_factory):
    settings = settings_factory()
    storage = open_storage(settings, make_plugin_manager(settings))
    accounts = Accounts(storage, settings)
    accounts.users.add("alice", "a long enough passphrase", org="default", role="admin")
    yield accounts
    storage.close()


def test_enrolment_needs_a_code_from_the_app_and_gives_ten_recovery_codes(accounts):
    started = accounts.second_factor.begin("alice")
    assert started["otpauth_uri"].startswith("otpauth://totp/DashFleet:alice?secret=")
    assert started["qr_svg"].startswith("<svg") and "<script" not in started["qr_svg"]
    assert 'xmlns="http://www.w3.org/2000/svg"' in started["qr_svg"]  # else an <img> draws nothing
    assert not accounts.second_factor.enabled(accounts.users.get("alice"))
    with pytest.raises(AccountError) as wrong:
        accounts.second_factor.confirm("alice", "000000" if pyotp.TOTP(started["secret"]).now() != "000000" else "111111")
    assert wrong.value.status == 422
    codes = accounts.second_factor.confirm("alice", pyotp.TOTP(started["secret"]).now())
    assert len(codes) == 10 and len(set(codes)) == 10
    user = accounts.users.get("alice")
    assert accounts.second_factor.enabled(user)
    assert not any(code in str(user.totp) for code in codes)  # digests only
    with pytest.raises(AccountError) as again:
        accounts.second_factor.begin("alice")
    assert again.value.status == 409


def test_a_code_is_accepted_once_and_a_recovery_code_once(accounts):
    secret = accounts.second_factor.begin("alice")["secret"]
    totp = pyotp.TOTP(secret)
    codes = accounts.second_factor.confirm("alice", totp.now())
    # the code used to confirm was spent: the same step is refused
    assert accounts.second_factor.verify("alice", totp.now()) is None
    assert accounts.second_factor.verify("alice", codes[0].upper()) == "recovery"
    assert accounts.second_factor.verify("alice", codes[0]) is None
    assert accounts.second_factor.remaining_recovery_codes(accounts.users.get("alice")) == 9
    assert accounts.second_factor.verify("alice", "not-a-code") is None
    accounts.second_factor.disable("alice")
    assert not accounts.second_factor.enabled(accounts.users.get("alice"))
