<#
.SYNOPSIS
  Install the DashFleet agent on this Windows machine as a scheduled task running as SYSTEM.
.DESCRIPTION
  Copies dashfleet-agent.exe to C:\Program Files\DashFleet, writes %ProgramData%\DashFleet\agent.toml
  (readable by SYSTEM and Administrators only: it holds the token), sends one test report (--once),
  and registers the task "DashFleet Agent" (at startup, restarted every minute if it stops).
  The agent keeps its state (machine id, spool) in %ProgramData%\DashFleet\agent.
  Untested on Windows CI; see docs/deploy.md. Run as Administrator.
.EXAMPLE
  .\install_windows_agent.ps1 -Server https://dashfleet.example.org -Token (Get-Content token.txt)
.EXAMPLE
  .\install_windows_agent.ps1 -Uninstall
#>
[CmdletBinding()]
param(
    [string]$Server,
    [string]$Token,
    [string]$Binary = (Join-Path $PSScriptRoot 'dashfleet-agent.exe'),
    [string]$CaBundle,
    [int]$Interval = 10,
    [switch]$Uninstall
)
$ErrorActionPreference = 'Stop'
$TaskName = 'DashFleet Agent'
$InstallDir = Join-Path $env:ProgramFiles 'DashFleet'
$Exe = Join-Path $InstallDir 'dashfleet-agent.exe'
$DataDir = Join-Path $env:ProgramData 'DashFleet'
$Config = Join-Path $DataDir 'agent.toml'

$principal = New-Object Security.Principal.WindowsPrincipal([Security.Principal.WindowsIdentity]::GetCurrent())
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    throw 'Run this script as Administrator.'
}

if ($Uninstall) {
    if (Get-ScheduledTask -TaskName $TaskName -ErrorAction SilentlyContinue) {
        Stop-ScheduledTask -TaskName $TaskName
        Unregister-ScheduledTask -TaskName $TaskName -Confirm:$false
    }
    Remove-Item -LiteralPath $InstallDir -Recurse -Force -ErrorAction SilentlyContinue
    Write-Output "DashFleet agent removed; its state stays in $DataDir\agent (delete it to forget the machine id)."
    return
}

if (-not $Server) { throw '-Server is required: the DashFleet server base URL, e.g. https://dashfleet.example.org' }
if (-not $Token) { throw '-Token is required: the server''s fleet token' }
if ($Server -notmatch '^https?://[^\s"]+$') { throw "-Server '$Server' is not an http(s) URL" }
if ($Token -match '["\\\r\n]') { throw '-Token must not contain quotes, backslashes or line breaks' }
if (-not (Test-Path -LiteralPath $Binary)) { throw "Agent binary not found: $Binary (build it with PyInstaller, see docs/deploy.md)" }

# Program files.
New-Item -ItemType Directory -Force -Path $InstallDir, $DataDir | Out-Null
if (Get-ScheduledTask -TaskName $TaskName -ErrorAction SilentlyContinue) { Stop-ScheduledTask -TaskName $TaskName }
Copy-Item -LiteralPath $Binary -Destination $Exe -Force

# Config with the token: written, then locked down to SYSTEM and Administrators.
$lines = @('[agent]', "server = `"$Server`"", "token = `"$Token`"", "interval = $Interval")
if ($CaBundle) { $lines += "ca_bundle = '$CaBundle'" }
Set-Content -LiteralPath $Config -Value $lines -Encoding UTF8
$acl = New-Object Security.AccessControl.FileSecurity
$acl.SetAccessRuleProtection($true, $false)
foreach ($who in 'SYSTEM', 'BUILTIN\Administrators') {
    $acl.AddAccessRule((New-Object Security.AccessControl.FileSystemAccessRule($who, 'FullControl', 'Allow')))
}
Set-Acl -LiteralPath $Config -AclObject $acl

# One test report: 0 delivered, 75 server unreachable (spooled), 77 refused.
& $Exe --config $Config --once
switch ($LASTEXITCODE) {
    0 { Write-Output "Test report delivered to $Server." }
    75 { Write-Warning "$Server is not reachable now; the agent will spool and retry." }
    77 { throw 'The server refused the token, the URL or the certificate (see the message above).' }
    default { throw "The test report failed (exit $LASTEXITCODE, see the message above)." }
}

# The task: at startup, as SYSTEM, no time limit, restarted if it stops.
$action = New-ScheduledTaskAction -Execute $Exe -Argument "--config `"$Config`""
$trigger = New-ScheduledTaskTrigger -AtStartup
$settings = New-ScheduledTaskSettingsSet -ExecutionTimeLimit ([TimeSpan]::Zero) -RestartCount 9999 `
    -RestartInterval (New-TimeSpan -Minutes 1) -StartWhenAvailable -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries
$taskPrincipal = New-ScheduledTaskPrincipal -UserId 'SYSTEM' -LogonType ServiceAccount -RunLevel Highest
Register-ScheduledTask -TaskName $TaskName -Action $action -Trigger $trigger -Settings $settings `
    -Principal $taskPrincipal -Description 'DashFleet agent: machine health reports' -Force | Out-Null
Start-ScheduledTask -TaskName $TaskName
Write-Output "DashFleet agent installed and started (task '$TaskName'). Status: & '$Exe' status"
