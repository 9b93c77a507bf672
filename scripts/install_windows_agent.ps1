<#
.SYNOPSIS
  Install the DashFleet agent on this Windows machine as a scheduled task running as SYSTEM.
.DESCRIPTION
  Copies dashfleet-agent.exe to C:\Program Files\DashFleet, writes the fleet token to
  %ProgramData%\DashFleet\agent.token and the settings to %ProgramData%\DashFleet\agent.toml
  (token_file = that file; both readable by SYSTEM and Administrators only), sends one test report
  (--once), and registers the task "DashFleet Agent" (at startup, restarted every minute if it stops).
  The token is never on a command line: the agent reads it from the file.
  The agent keeps its state (machine id, machine key, spool) in %ProgramData%\DashFleet\agent.
  Untested on Windows CI; see docs/deploy.md. Run as Administrator.
.EXAMPLE
  .\install_windows_agent.ps1 -Server https://dashfleet.example.org -TokenFile .\fleet.token
.EXAMPLE
  .\install_windows_agent.ps1 -Uninstall
#>
[CmdletBinding()]
param(
    [string]$Server,
    [string]$Token,
    [string]$TokenFile,
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
$TokenPath = Join-Path $DataDir 'agent.token'

$StateDir = Join-Path $DataDir 'agent'

function Set-PrivateFile([string]$Path, [string[]]$Lines) {
    # Readable by SYSTEM and Administrators only, locked down while still empty; then the content in
    # UTF-8 without a byte order mark (Windows PowerShell's Set-Content -Encoding UTF8 writes one,
    # which TOML does not allow).
    [IO.File]::WriteAllText($Path, '')
    $acl = New-Object Security.AccessControl.FileSecurity
    $acl.SetAccessRuleProtection($true, $false)
    foreach ($who in 'SYSTEM', 'BUILTIN\Administrators') {
        $acl.AddAccessRule((New-Object Security.AccessControl.FileSystemAccessRule($who, 'FullControl', 'Allow')))
    }
    Set-Acl -LiteralPath $Path -AclObject $acl
    [IO.File]::WriteAllLines($Path, $Lines, (New-Object Text.UTF8Encoding($false)))
}

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
    Write-Output "DashFleet agent removed; its state stays in $DataDir\agent (delete it to forget the machine id and key), its settings in $Config and $TokenPath."
    return
}

if (-not $Server) { throw '-Server is required: the DashFleet server base URL, e.g. https://dashfleet.example.org' }
if ($TokenFile) {
    if ($Token) { throw 'Give -Token or -TokenFile, not both.' }
    if (-not (Test-Path -LiteralPath $TokenFile)) { throw "Token file not found: $TokenFile" }
    $Token = (Get-Content -LiteralPath $TokenFile -TotalCount 1)
    if ($Token) { $Token = $Token.Trim() }
}
if (-not $Token) { throw '-TokenFile (preferred) or -Token is required: the server''s fleet token' }
if ($Server -notmatch '^https?://[^\s"]+$') { throw "-Server '$Server' is not an http(s) URL" }
if ($Token -match '["\\\r\n]') { throw '-Token must not contain quotes, backslashes or line breaks' }
if (-not (Test-Path -LiteralPath $Binary)) { throw "Agent binary not found: $Binary (build it with PyInstaller, see docs/deploy.md)" }

# Program files, and the state folder (machine id, machine key, spool) for SYSTEM and Administrators
# only: under ProgramData, files would otherwise inherit read access for all local users.
New-Item -ItemType Directory -Force -Path $InstallDir, $DataDir, $StateDir | Out-Null
icacls.exe $StateDir /inheritance:r /grant:r 'SYSTEM:(OI)(CI)F' 'BUILTIN\Administrators:(OI)(CI)F' | Out-Null
if ($LASTEXITCODE -ne 0) { throw "icacls failed on $StateDir (exit $LASTEXITCODE)" }
if (Get-ScheduledTask -TaskName $TaskName -ErrorAction SilentlyContinue) { Stop-ScheduledTask -TaskName $TaskName }
Copy-Item -LiteralPath $Binary -Destination $Exe -Force

# The token in a file of its own, the settings point at it; both locked down to SYSTEM and Administrators.
# (TOML literal strings in single quotes: Windows paths keep their backslashes.)
if ($CaBundle -match "['\r\n]") { throw '-CaBundle must not contain quotes or line breaks' }
Set-PrivateFile -Path $TokenPath -Lines @($Token)
$lines = @('[agent]', "server = `"$Server`"", "token_file = '$TokenPath'", "interval = $Interval")
if ($CaBundle) { $lines += "ca_bundle = '$CaBundle'" }
Set-PrivateFile -Path $Config -Lines $lines

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
