"""`dashfleet-agent service`: the agent as a Windows service, on pywin32's win32serviceutil framework.

The MSI (packaging/wix/DashFleet.wxs) registers `dashfleet-agent.exe service` as the service
"DashFleetAgent" (LocalSystem, automatic start); the Service Control Manager starts it with no
further arguments and this module hands the process to the SCM's dispatcher. The same command with
a word runs pywin32's own service commands by hand: `service install|update|remove|start|stop|
restart|debug` (`debug` runs it in the console, Ctrl-C stops it).

The service reads its settings like every agent (flags are not available to a service: the config
file from $DASHFLEET_CONFIG, then the registry values the MSI wrote, see registry.py) and logs to
the Windows event log (source "DashFleet Agent"). As it starts it restricts the registry key (it
holds the token) and the state folder to SYSTEM and Administrators. A stop request from the SCM sets the stop event;
the agent finishes the step it is in and stops, as on SIGTERM.

pywin32 is imported only on Windows, inside the functions that need it: the run loop
(`ServiceRunner`, driving `dashfleet_agent.cli.run_until`) and the command dispatch (`dispatch`)
carry no Windows code and are tested anywhere.
"""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path
from typing import Any, Callable

from .registry import WHERE as REGISTRY_WHERE

SERVICE_NAME = "DashFleetAgent"
DISPLAY_NAME = "DashFleet Agent"
DESCRIPTION = "DashFleet agent: collects this machine's health and reports it to the DashFleet server."
# The argument the service is registered with (ServiceInstall Arguments in the MSI).
SERVICE_ARG = "service"
# pywin32's HandleCommandLine commands that make sense for this service.
COMMANDS = ("install", "update", "remove", "start", "stop", "restart", "debug")


class ServiceError(Exception):
    """A `service` command that cannot run here (wrong platform, unknown command)."""


def dispatch(args: list[str]) -> str:
    """What `dashfleet-agent service ARGS` does: "dispatcher" (started by the SCM: no arguments) or
    "command" (one of COMMANDS, for pywin32's HandleCommandLine); anything else is a ServiceError."""
    if not args:
        return "dispatcher"
    if args[0] in COMMANDS:
        return "command"
    raise ServiceError(f"unknown service command {args[0]!r}: use one of {', '.join(COMMANDS)}, or none "
                       "(as the Service Control Manager starts it)")


class ServiceRunner:
    """The service's work, free of pywin32: run `target` (the agent until the event it is given is
    set: dashfleet_agent.cli.run_until) and stop it when the SCM asks."""

    def __init__(self, target: Callable[[threading.Event], int]) -> None:
        self.target = target
        self.stopping = threading.Event()

    def run(self) -> int:
        """Run the agent; returns its exit code once stopped (0), or at once when it cannot start."""
        return self.target(self.stopping)

    def stop(self) -> None:
        """The SCM's stop request: the agent finishes its step and `run` returns."""
        self.stopping.set()


def service_command_line(frozen: bool, executable: str, argv0: str) -> tuple[str, str]:
    """The program and arguments `service install` registers: the frozen exe with `service`; in a
    pip install the console script that ran (`dashfleet-agent.exe service`, or `dashfleet.exe agent
    service`), never python.exe itself."""
    if frozen:
        return executable, SERVICE_ARG
    program = str(Path(argv0).resolve())
    if not program.lower().endswith(".exe"):
        program += ".exe"  # the console-script launcher pip writes on Windows
    stem = Path(program).stem.lower()
    return program, SERVICE_ARG if stem == "dashfleet-agent" else f"agent {SERVICE_ARG}"


def main(args: list[str], target: Callable[[threading.Event], int], platform: str | None = None) -> int:
    """`dashfleet-agent service [COMMAND]` with `target` as the service's work; returns the exit code."""
    platform = platform or sys.platform
    what = dispatch(args)
    if not platform.startswith("win"):
        raise ServiceError("the Windows service entry point runs on Windows only; on Linux run the agent "
                           "under systemd (scripts/install_systemd.sh agent ...)")
    import servicemanager  # pywin32, Windows only
    import win32serviceutil

    service = _service_class(target)
    if what == "dispatcher":
        servicemanager.Initialize()
        servicemanager.PrepareToHostSingle(service)
        servicemanager.StartServiceCtrlDispatcher()
        return 0
    return win32serviceutil.HandleCommandLine(service, argv=[sys.argv[0], *args]) or 0


def _service_class(target: Callable[[threading.Event], int]) -> type:
    """The pywin32 service class (defined here so that pywin32 is imported on Windows only)."""
    import servicemanager
    import win32service
    import win32serviceutil

    class DashFleetAgentService(win32serviceutil.ServiceFramework):
        _svc_name_ = SERVICE_NAME
        _svc_display_name_ = DISPLAY_NAME
        _svc_description_ = DESCRIPTION
        # What `service install` registers: this program with its service argument.
        _exe_name_, _exe_args_ = service_command_line(getattr(sys, "frozen", False), sys.executable, sys.argv[0])

        def __init__(self, args: Any) -> None:
            super().__init__(args)
            self.runner = ServiceRunner(target)

        def SvcStop(self) -> None:  # noqa: N802 - pywin32's name
            self.ReportServiceStatus(win32service.SERVICE_STOP_PENDING)
            self.runner.stop()

        def SvcDoRun(self) -> None:  # noqa: N802 - pywin32's name
            _log_to_event_log()
            servicemanager.LogInfoMsg(f"{DISPLAY_NAME} starting")
            try:
                _lock_down()
            except Exception as exc:  # noqa: BLE001 - the agent still runs; the event log says why
                servicemanager.LogWarningMsg(f"{DISPLAY_NAME}: could not restrict {REGISTRY_WHERE} and the "
                                             f"state folder to SYSTEM and Administrators: {exc}")
            rc = self.runner.run()
            if rc:
                servicemanager.LogErrorMsg(f"{DISPLAY_NAME} stopped with exit code {rc}: see the messages above")
            else:
                servicemanager.LogInfoMsg(f"{DISPLAY_NAME} stopped")

    return DashFleetAgentService


def _lock_down() -> None:
    """The registry key the MSI wrote (it holds the fleet token; HKLM\\Software is readable by every
    local user) and the default state folder (machine key, spool): SYSTEM and Administrators only,
    inheritance cut. The MSI cannot set these ACLs with wixl; the service does it as it starts,
    which the install does at once."""
    import ntsecuritycon
    import win32security

    from .paths import default_state_dir
    from .registry import KEY

    def dacl(rights: int) -> object:
        acl = win32security.ACL()
        for who in (win32security.WinLocalSystemSid, win32security.WinBuiltinAdministratorsSid):
            acl.AddAccessAllowedAceEx(win32security.ACL_REVISION_DS,
                                      win32security.OBJECT_INHERIT_ACE | win32security.CONTAINER_INHERIT_ACE,
                                      rights, win32security.CreateWellKnownSid(who))
        return acl

    protect = win32security.DACL_SECURITY_INFORMATION | win32security.PROTECTED_DACL_SECURITY_INFORMATION
    win32security.SetNamedSecurityInfo("MACHINE\\" + KEY, win32security.SE_REGISTRY_KEY, protect, None, None,
                                       dacl(ntsecuritycon.KEY_ALL_ACCESS), None)
    state = default_state_dir()
    state.mkdir(parents=True, exist_ok=True)
    win32security.SetNamedSecurityInfo(str(state), win32security.SE_FILE_OBJECT, protect, None, None,
                                       dacl(ntsecuritycon.FILE_ALL_ACCESS), None)


def _log_to_event_log() -> None:
    """A service has no console: its log lines go to the Windows event log."""
    from logging.handlers import NTEventLogHandler

    root = logging.getLogger()
    root.addHandler(NTEventLogHandler(DISPLAY_NAME))
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
