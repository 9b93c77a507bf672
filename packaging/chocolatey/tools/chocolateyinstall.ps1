# Chocolatey install: the DashFleet agent through the project's own installer
# (install_windows_agent.ps1, shipped beside this script): dashfleet-agent.exe under Program Files,
# the token and settings in %ProgramData%\DashFleet (SYSTEM and Administrators only), one test
# report, and the scheduled task "DashFleet Agent" (SYSTEM, at startup, restarted if it stops).
# Package parameters: /Server:URL (required), /Token:TOKEN or /TokenFile:PATH (one required; pass the
# token with --package-parameters-sensitive), /Interval:SECONDS (default 10).
$ErrorActionPreference = 'Stop'
$toolsDir = Split-Path -Parent $MyInvocation.MyCommand.Definition
$pp = Get-PackageParameters

if (-not $pp['Server']) {
    throw "Give the DashFleet server: choco install dashfleet-agent --params `"'/Server:https://dashfleet.example.org'`" --package-parameters-sensitive `"'/Token:...'`""
}
$install = @{
    Server = $pp['Server']
    Binary = Join-Path $toolsDir 'dashfleet-agent.exe'
}
if ($pp['TokenFile']) { $install.TokenFile = $pp['TokenFile'] }
if ($pp['Token']) { $install.Token = $pp['Token'] }
if (-not ($install.Token -or $install.TokenFile)) {
    throw 'Give the fleet token: --package-parameters-sensitive "''/Token:...''" (or /TokenFile:PATH in --params)'
}
if ($pp['Interval']) {
    $seconds = 0
    if (-not [int]::TryParse($pp['Interval'], [ref]$seconds) -or $seconds -lt 1) {
        throw "/Interval:$($pp['Interval']) is not a whole number of seconds (1 or more), e.g. /Interval:30"
    }
    $install.Interval = $seconds
}

& (Join-Path $toolsDir 'install_windows_agent.ps1') @install
