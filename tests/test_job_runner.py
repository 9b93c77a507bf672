"""One process per host runs the scheduled jobs: the job-runner lock (`dashfleet_core.job_runner`)
and the Fleet's use of it. flock locks belong to open files, so two locks in one test process
contend like two workers do."""

from __future__ import annotations

import threading

import pytest

from dashfleet_core.config import Settings
from dashfleet_core.fleet import Fleet
from dashfleet_core.job_runner import JobRunnerLock, fcntl, lock_path

pytestmark = pytest.mark.skipif(fcntl is None, reason="the lock is a POSIX flock")


def test_lock_path_differs_by_storage_and_stays_in_the_data_folder(tmp_path):
    a = lock_path(tmp_path, "sqlite:///a.db")
    assert a.parent == tmp_path and a == lock_path(tmp_path, "sqlite:///a.db")
    assert a != lock_path(tmp_path, "sqlite:///b.db")


def test_the_first_holder_starts_at_once_and_the_second_takes_over_when_it_releases(tmp_path):
    path = tmp_path / "jobs.lock"
    first, second = JobRunnerLock(path, retry_seconds=0.05), JobRunnerLock(path, retry_seconds=0.05)
    started = []
    took_over = threading.Event()
    assert first.run_when_held(lambda: started.append("first")) is True
    assert second.run_when_held(lambda: (started.append("second"), took_over.set())) is False
    assert not took_over.wait(0.3) and started == ["first"] and not second.held
    first.release()
    assert took_over.wait(10) and started == ["first", "second"] and second.held
    second.release()


def test_a_released_waiter_never_starts(tmp_path):
    path = tmp_path / "jobs.lock"
    holder, waiter = JobRunnerLock(path, retry_seconds=0.05), JobRunnerLock(path, retry_seconds=0.05)
    started = []
    holder.run_when_held(lambda: None)
    waiter.run_when_held(lambda: started.append("waiter"))
    waiter.release()
    holder.release()
    again = JobRunnerLock(path)
    assert again.run_when_held(lambda: None) is True  # free: the released waiter did not take it
    again.release()
    assert started == []


def _fleet(tmp_path) -> Fleet:
    return Fleet(Settings.model_validate({
        "storage": {"url": f"sqlite:///{tmp_path}/dashfleet.db"},
        "server": {"data_dir": str(tmp_path), "report_self": False},
    }))


def test_only_the_fleet_holding_the_lock_runs_jobs_and_the_other_takes_over(tmp_path):
    one, two = _fleet(tmp_path), _fleet(tmp_path)
    ran = {"one": threading.Event(), "two": threading.Event()}
    one.schedule("probe", 0.05, ran["one"].set)
    two.schedule("probe", 0.05, ran["two"].set)
    one.start()
    two.start()
    try:
        assert one.runs_jobs and not two.runs_jobs
        assert ran["one"].wait(10)
        assert two.engine._scheduler is None  # no scheduler, no APScheduler threads, in the waiting one
        one.stop()
        assert ran["two"].wait(10) and two.runs_jobs
    finally:
        one.stop()
        two.stop()


def test_a_lock_that_cannot_be_created_lets_this_process_run_the_jobs(tmp_path, caplog):
    """The lock saves work, leases keep runs single: a data folder that cannot hold the lock
    (here a path under a file) must not stop the server's jobs."""
    (tmp_path / "a-file").write_text("")
    lock = JobRunnerLock(tmp_path / "a-file" / "jobs.lock")
    started = []
    assert lock.run_when_held(lambda: started.append(True)) is True
    assert started == [True] and lock.held
    assert "cannot open the job-runner lock" in caplog.text
    lock.release()
