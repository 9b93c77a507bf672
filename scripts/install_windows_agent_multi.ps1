<#
.SYNOPSIS
  Push the DashFleet agent to several Windows machines.
.DESCRIPTION
  -Method PSRemoting (default): copies dashfleet-agent.exe and install_windows_agent.ps1 into a
  PowerShell remoting session on each machine and runs the installer there.
  -Method AdminShare: copies the files to \\PC\C$\ProgramData\DashFleet\install and runs the
  installer once through a scheduled task created with schtasks /S PC (for machines without WinRM).
  One line per machine, then a summary; a failed machine does not stop the others.
  Untested on Windows CI; see docs/deploy.md. Run as an account that is administrator on the targets.
  The token travels inside the remoting session or in a file in the restricted admin-share folder,
  never on a command line on the target.
  The original dashboard's parameters still work: -Targets is -ComputerName, -Source is -Binary
  (the exe is installed as dashfleet-agent.exe whatever its file name, e.g. fleet_agent.exe).
.EXAMPLE
  .\install_windows_agent_multi.ps1 -ComputerList .\pcs.txt -Server https://dashfleet.example.org -TokenFile .\fleet.token
.EXAMPLE
  .\install_windows_agent_multi.ps1 -Targets @('host1','host2') -Source .\dist\fleet_agent.exe -Server https://dashfleet.example.org -TokenFile .\fleet.token
#>
[CmdletBinding()]
param(
    [Alias('Targets')] [string[]]$ComputerName,
    [string]$ComputerList,
    [Parameter(Mandatory)] [string]$Server,
    [string]$Token,
    [string]$TokenFile,
    [Alias('Source')] [string]$Binary = (Join-Path $PSScriptRoot 'dashfleet-agent.exe'),
    [ValidateSet('PSRemoting', 'AdminShare')] [string]$Method = 'PSRemoting',
    [pscredential]$Credential
)
$ErrorActionPreference = 'Stop'
$Installer = Join-Path $PSScriptRoot 'install_windows_agent.ps1'
if ($TokenFile) {
    if ($Token) { throw 'Give -Token or -TokenFile, not both.' }
    $Token = (Get-Content -LiteralPath $TokenFile -TotalCount 1)
    if ($Token) { $Token = $Token.Trim() }
}
if (-not $Token) { throw '-TokenFile (preferred) or -Token is required: the server''s fleet token' }
if ($Token -match '["\\\r\n]') { throw 'The token must not contain quotes, backslashes or line breaks' }
if ($ComputerList) { $ComputerName += Get-Content -LiteralPath $ComputerList | Where-Object { $_.Trim() -and -not $_.StartsWith('#') } }
if (-not $ComputerName) { throw 'Give -ComputerName PC1,PC2 or -ComputerList file.txt (one name per line).' }
foreach ($f in $Binary, $Installer) { if (-not (Test-Path -LiteralPath $f)) { throw "Not found: $f" } }

$results = foreach ($pc in $ComputerName | ForEach-Object { $_.Trim() } | Sort-Object -Unique) {
    try {
        if ($Method -eq 'PSRemoting') {
            $sessionArgs = @{ ComputerName = $pc }
            if ($Credential) { $sessionArgs.Credential = $Credential }
            $s = New-PSSession @sessionArgs
            try {
                $remoteDir = Invoke-Command -Session $s -ScriptBlock {
                    $d = Join-Path $env:ProgramData 'DashFleet\install'
                    New-Item -ItemType Directory -Force -Path $d | Out-Null
                    $d
                }
                # The exe under the name the installer expects, whatever it was called here.
                Copy-Item -LiteralPath $Binary -Destination (Join-Path $remoteDir 'dashfleet-agent.exe') -ToSession $s -Force
                Copy-Item -LiteralPath $Installer -Destination $remoteDir -ToSession $s -Force
                Invoke-Command -Session $s -ArgumentList $remoteDir, $Server, $Token -ScriptBlock {
                    param($dir, $server, $token)
                    # In-session parameter passing: no process on the target has the token in its arguments.
                    & (Join-Path $dir 'install_windows_agent.ps1') -Server $server -Token $token `
                        -Binary (Join-Path $dir 'dashfleet-agent.exe')
                } | Out-Null
            } finally {
                Remove-PSSession $s
            }
        } else {
            $share = "\\$pc\C$\ProgramData\DashFleet\install"
            New-Item -ItemType Directory -Force -Path $share | Out-Null
            # Only SYSTEM and Administrators may read the folder: it holds the token file.
            icacls.exe $share /inheritance:r /grant:r 'SYSTEM:(OI)(CI)F' 'BUILTIN\Administrators:(OI)(CI)F' | Out-Null
            if ($LASTEXITCODE -ne 0) { throw "icacls failed on $share (exit $LASTEXITCODE)" }
            Copy-Item -LiteralPath $Binary -Destination (Join-Path $share 'dashfleet-agent.exe') -Force
            Copy-Item -LiteralPath $Installer -Destination $share -Force
            $local = 'C:\ProgramData\DashFleet\install'
            $quotedServer = $Server.Replace("'", "''")
            [IO.File]::WriteAllLines((Join-Path $share 'fleet.token'), @($Token), (New-Object Text.UTF8Encoding($false)))
            # A script on the target (schtasks /TR is limited to 261 characters); it deletes itself and
            # the token file once the installer has copied the token to its own place.
            Set-Content -LiteralPath (Join-Path $share 'run.ps1') -Encoding UTF8 -Value @(
                "& '$local\install_windows_agent.ps1' -Server '$quotedServer' -TokenFile '$local\fleet.token' -Binary '$local\dashfleet-agent.exe' *> '$local\install.log'",
                "Remove-Item -LiteralPath '$local\fleet.token', '$local\run.ps1' -Force")
            $cmd = "powershell.exe -NoProfile -ExecutionPolicy Bypass -File $local\run.ps1"
            schtasks.exe /Create /S $pc /RU SYSTEM /SC ONCE /ST 00:00 /F /TN 'DashFleet Agent Install' /TR $cmd | Out-Null
            if ($LASTEXITCODE -ne 0) { throw "schtasks /Create failed on $pc (exit $LASTEXITCODE)" }
            schtasks.exe /Run /S $pc /TN 'DashFleet Agent Install' | Out-Null
            if ($LASTEXITCODE -ne 0) { throw "schtasks /Run failed on $pc (exit $LASTEXITCODE)" }
        }
        $done = if ($Method -eq 'PSRemoting') { 'installed (PSRemoting)' } else {
            'install task started (AdminShare): see C:\ProgramData\DashFleet\install\install.log there' }
        [pscustomobject]@{ Computer = $pc; Ok = $true; Message = $done }
    } catch {
        [pscustomobject]@{ Computer = $pc; Ok = $false; Message = $_.Exception.Message }
    }
}
$results | Format-Table -AutoSize
$failed = @($results | Where-Object { -not $_.Ok }).Count
Write-Output "$(@($results).Count - $failed) installed, $failed failed."
if ($failed) { exit 1 }
