# Chocolatey uninstall: stop and remove the scheduled task "DashFleet Agent" and the program folder,
# through the project's own installer (install_windows_agent.ps1 -Uninstall). The agent's state
# (machine id, key, spool) and its settings in %ProgramData%\DashFleet stay, so a reinstall keeps the
# machine's identity; delete that folder to forget it.
$ErrorActionPreference = 'Stop'
$toolsDir = Split-Path -Parent $MyInvocation.MyCommand.Definition
& (Join-Path $toolsDir 'install_windows_agent.ps1') -Uninstall
