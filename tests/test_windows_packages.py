"""The Windows packages, built and checked on Linux:

- the MSI (packaging/wix/DashFleet.wxs) built with wixl by scripts/build_msi.sh, opened with
  msiinfo / msiextract: the exe under Program Files, the registry values, the service entries;
- the Chocolatey .nupkg built by scripts/build_nupkg.py, opened as a zip: the choco pack layout and
  a valid nuspec with the required fields;
- the PowerShell scripts' parameter blocks, read as text (PowerShell is not in Debian): the original
  dashboard's `-Targets` / `-Source` still work, and the Chocolatey scripts call the installer with
  parameters it has.

The Windows agent exe is built on Windows (PyInstaller does not cross-compile): here both packages
are built around a stand-in file, which is enough to check what goes where.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

from conftest import REPO

STAND_IN = b"MZ stand-in for dashfleet-agent.exe, built on Windows\r\n"
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
NUSPEC_NS = "{http://schemas.microsoft.com/packaging/2015/06/nuspec.xsd}"


@pytest.fixture
def stand_in_exe(tmp_path) -> Path:
    exe = tmp_path / "dashfleet-agent.exe"
    exe.write_bytes(STAND_IN)
    return exe


# --- MSI ------------------------------------------------------------------------------------------

@pytest.fixture
def msi_tools():
    missing = [tool for tool in ("wixl", "msiinfo", "msiextract") if not shutil.which(tool)]
    if missing:
        message = f"{', '.join(missing)} not found: apt-get install wixl msitools"
        if os.environ.get("DASHFLEET_REQUIRE_MSI"):
            pytest.fail(message)
        pytest.skip(message)


def _table(msi: Path, name: str) -> list[dict[str, str]]:
    """msiinfo export: a header line of column names, a line of types, a line naming the table, rows."""
    out = subprocess.run(["msiinfo", "export", str(msi), name], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    columns = lines[0].split("\t")
    return [dict(zip(columns, line.split("\t"))) for line in lines[3:] if line]


@pytest.fixture
def msi(msi_tools, stand_in_exe, tmp_path) -> Path:
    out = tmp_path / "DashFleet-agent.msi"
    built = subprocess.run([str(REPO / "scripts" / "build_msi.sh"), str(stand_in_exe), str(out)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    assert out.is_file() and out.read_bytes()[:8] == bytes.fromhex("d0cf11e0a1b11ae1")  # an OLE compound file
    return out


def test_msi_has_the_tables_it_needs(msi):
    tables = subprocess.run(["msiinfo", "tables", str(msi)], capture_output=True, text=True, timeout=60)
    assert {"File", "Registry", "ServiceInstall", "ServiceControl", "Directory", "LaunchCondition"} <= set(
        tables.stdout.split())


def test_msi_installs_the_agent_exe_under_program_files(msi, tmp_path):
    [exe] = _table(msi, "File")
    assert exe["FileName"] == "dashfleet-agent.exe" and int(exe["FileSize"]) == len(STAND_IN)
    dirs = {row["Directory"]: row for row in _table(msi, "Directory")}
    component = {row["Component"]: row for row in _table(msi, "Component")}[exe["Component_"]]
    assert dirs[component["Directory_"]]["Directory_Parent"] == "ProgramFiles64Folder"
    assert dirs[component["Directory_"]]["DefaultDir"] == "DashFleet"
    assert int(component["Attributes"]) & 256  # msidbComponentAttributes64bit

    extracted = tmp_path / "extracted"
    listing = subprocess.run(["msiextract", "-C", str(extracted), str(msi)], capture_output=True, text=True,
                             timeout=60)
    assert listing.returncode == 0, listing.stderr
    [path] = [line for line in listing.stdout.splitlines() if line.endswith("dashfleet-agent.exe")]
    assert "DashFleet" in path
    assert (extracted / path).read_bytes() == STAND_IN


def test_msi_writes_server_token_and_interval_to_the_agents_registry_key(msi):
    rows = {row["Name"]: row for row in _table(msi, "Registry")}
    assert {name: rows[name]["Value"] for name in ("Server", "Token", "Interval")} == {
        "Server": "[SERVER]", "Token": "[TOKEN]", "Interval": "[INTERVAL]"}
    for name in ("Server", "Token", "Interval"):
        assert rows[name]["Root"] == "2"  # HKEY_LOCAL_MACHINE
        assert rows[name]["Key"].rstrip("\\") == r"Software\DashFleet\Agent"  # what dashfleet_agent.registry reads
    props = {row["Property"]: row["Value"] for row in _table(msi, "Property")}
    assert props["INTERVAL"] == "10"
    assert props["MsiHiddenProperties"] == "TOKEN"  # the token stays out of msiexec logs
    assert "SERVER" not in props and "TOKEN" not in props  # no default: the command line must give them
    conditions = {row["Condition"]: row["Description"] for row in _table(msi, "LaunchCondition")}
    assert "SERVER=" in conditions["Installed OR (SERVER AND TOKEN)"]  # no install without them


def test_msi_upgrades_in_place(msi):
    rows = _table(msi, "Upgrade")
    props = {row["Property"]: row["Value"] for row in _table(msi, "Property")}
    assert {row["ActionProperty"] for row in rows} == {"WIX_UPGRADE_DETECTED", "WIX_DOWNGRADE_DETECTED"}
    assert all(row["UpgradeCode"] == props["UpgradeCode"] for row in rows)


def test_msi_installs_and_controls_the_agent_service(msi):
    [service] = _table(msi, "ServiceInstall")
    assert service["Name"] == "DashFleetAgent" and service["DisplayName"] == "DashFleet Agent"
    assert service["Arguments"] == "service"  # dashfleet_agent.winservice: the SCM dispatcher
    assert service["StartName"] == "LocalSystem"
    assert (int(service["ServiceType"]), int(service["StartType"]), int(service["ErrorControl"])) == (16, 2, 1)
    [exe] = _table(msi, "File")
    assert service["Component_"] == exe["Component_"]
    [control] = _table(msi, "ServiceControl")
    assert control["Name"] == "DashFleetAgent" and control["Wait"] == "1"
    # start on install (1), stop on install (2) and uninstall (32), remove on uninstall (128)
    assert int(control["Event"]) == 1 | 2 | 32 | 128


def test_msi_build_says_what_is_missing(msi_tools, tmp_path):
    out = subprocess.run([str(REPO / "scripts" / "build_msi.sh"), str(tmp_path / "nope.exe"), str(tmp_path / "x.msi")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "nope.exe not found" in out.stderr and "Windows agent" in out.stderr


# --- Chocolatey -----------------------------------------------------------------------------------

@pytest.fixture
def nupkg(stand_in_exe, tmp_path) -> Path:
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "build_nupkg.py"), "--exe", str(stand_in_exe),
                          "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    path = Path(out.stdout.strip())
    assert path == tmp_path / "out" / f"dashfleet-agent.{VERSION}.nupkg"
    return path


def test_nupkg_has_the_choco_pack_layout(nupkg):
    with zipfile.ZipFile(nupkg) as zf:
        names = set(zf.namelist())
        assert {"[Content_Types].xml", "_rels/.rels", "dashfleet-agent.nuspec", "tools/chocolateyinstall.ps1",
                "tools/chocolateyuninstall.ps1", "tools/install_windows_agent.ps1", "tools/dashfleet-agent.exe",
                "tools/dashfleet-agent.exe.ignore", "tools/VERIFICATION.txt"} <= names
        [core] = [n for n in names if n.startswith("package/services/metadata/core-properties/")]
        assert core.endswith(".psmdcp")

        rels = ET.fromstring(zf.read("_rels/.rels"))
        targets = {r.get("Type").rsplit("/", 1)[-1]: r.get("Target") for r in rels}
        assert targets == {"manifest": "/dashfleet-agent.nuspec", "core-properties": "/" + core}
        types = ET.fromstring(zf.read("[Content_Types].xml"))
        declared = {t.get("Extension"): t.get("ContentType") for t in types}
        assert declared["rels"] == "application/vnd.openxmlformats-package.relationships+xml"
        assert declared["psmdcp"] == "application/vnd.openxmlformats-package.core-properties+xml"
        for name in names - {"[Content_Types].xml"}:  # every part has a content type
            assert name.rsplit(".", 1)[-1] in declared, name

        props = ET.fromstring(zf.read(core))
        dc = "{http://purl.org/dc/elements/1.1/}"
        assert props.find(f"{dc}identifier").text == "dashfleet-agent"

        assert zf.read("tools/dashfleet-agent.exe") == STAND_IN
        assert hashlib.sha256(STAND_IN).hexdigest().upper() in zf.read("tools/VERIFICATION.txt").decode()
        assert zf.read("tools/install_windows_agent.ps1") == (REPO / "scripts" / "install_windows_agent.ps1").read_bytes()


def test_nupkg_nuspec_is_valid_xml_with_the_required_fields(nupkg):
    with zipfile.ZipFile(nupkg) as zf:
        root = ET.fromstring(zf.read("dashfleet-agent.nuspec"))
    assert root.tag == f"{NUSPEC_NS}package"
    meta = {child.tag.removeprefix(NUSPEC_NS): (child.text or "").strip() for child in root.find(f"{NUSPEC_NS}metadata")}
    for field in ("id", "version", "title", "authors", "description"):
        assert meta.get(field), field
    assert meta["id"] == "dashfleet-agent" and meta["version"] == VERSION
    for parameter in ("/Server:", "/Token:", "/Interval:"):
        assert parameter in meta["description"]
    assert root.find(f"{NUSPEC_NS}files") is None  # applied at pack time, as choco pack does


def test_nupkg_build_is_reproducible(stand_in_exe, tmp_path):
    built = []
    for run in ("a", "b"):
        out = subprocess.run([sys.executable, str(REPO / "scripts" / "build_nupkg.py"), "--exe", str(stand_in_exe),
                              "--out", str(tmp_path / run)], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        built.append(Path(out.stdout.strip()).read_bytes())
    assert built[0] == built[1]


def test_nupkg_build_refuses_a_missing_exe(tmp_path):
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "build_nupkg.py"), "--exe", str(tmp_path / "no.exe"),
                          "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "no.exe" in out.stderr and "build it on Windows" in out.stderr
    assert not list(tmp_path.glob("*.nupkg*"))


def test_nuspec_in_the_repo_has_the_projects_version():
    root = ET.parse(REPO / "packaging" / "chocolatey" / "dashfleet-agent.nuspec").getroot()
    assert root.find(f"{NUSPEC_NS}metadata/{NUSPEC_NS}version").text == VERSION


# --- PowerShell parameter blocks ------------------------------------------------------------------

def param_block(script: Path) -> dict[str, dict]:
    """The script's top-level `param(...)`: {name: {"type": ..., "aliases": [...], "default": ...}}."""
    text = script.read_text(encoding="utf-8")
    start = re.search(r"\[CmdletBinding\(\)\]\s*param\(", text, re.I)
    assert start, f"{script}: no [CmdletBinding()] param( block"
    depth, i = 1, start.end()
    entries, current = [], ""
    while depth:
        ch = text[i]
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 1 and ch == ",":
            entries.append(current)
            current = ""
        elif depth:
            current += ch
        i += 1
    entries.append(current)
    params = {}
    for entry in entries:
        match = re.search(r"\$(\w+)\s*(?:=\s*(.+))?$", entry.strip(), re.S)
        assert match, entry
        types = re.findall(r"\[([\w.]+(?:\[\])?)\]", entry)
        params[match.group(1)] = {
            "type": next((t for t in types if not t.startswith(("Alias", "Parameter", "ValidateSet"))), None),
            "aliases": re.findall(r"\[Alias\('([^']+)'\)\]", entry),
            "default": match.group(2),
        }
    return params


def test_multi_push_takes_the_original_targets_and_source_parameters():
    script = REPO / "scripts" / "install_windows_agent_multi.ps1"
    params = param_block(script)
    assert params["ComputerName"]["aliases"] == ["Targets"] and params["ComputerName"]["type"] == "string[]"
    assert params["Binary"]["aliases"] == ["Source"] and params["Binary"]["type"] == "string"
    assert {"ComputerList", "Server", "Token", "TokenFile", "Method", "Credential"} <= set(params)
    text = script.read_text(encoding="utf-8")
    # `-Source .\dist\fleet_agent.exe`: the exe lands under the name the installer runs
    assert text.count("-Destination (Join-Path $remoteDir 'dashfleet-agent.exe')") == 1
    assert text.count("-Destination (Join-Path $share 'dashfleet-agent.exe')") == 1
    assert "-Targets @('host1','host2') -Source .\\dist\\fleet_agent.exe" in text  # documented


def test_chocolatey_scripts_call_the_installer_with_parameters_it_has():
    installer = param_block(REPO / "scripts" / "install_windows_agent.ps1")
    tools = REPO / "packaging" / "chocolatey" / "tools"
    install = (tools / "chocolateyinstall.ps1").read_text(encoding="utf-8")
    splatted = set(re.findall(r"\$install\.(\w+)\s*=", install)) | set(
        re.findall(r"^\s*(\w+)\s*=", install.split("$install = @{", 1)[1].split("}", 1)[0], re.M))
    assert splatted == {"Server", "Binary", "Token", "TokenFile", "Interval"}
    assert splatted <= set(installer)
    for parameter in ("Server", "Token", "TokenFile", "Interval"):
        assert f"$pp['{parameter}']" in install
    assert "& (Join-Path $toolsDir 'install_windows_agent.ps1') @install" in install
    uninstall = (tools / "chocolateyuninstall.ps1").read_text(encoding="utf-8")
    assert "install_windows_agent.ps1') -Uninstall" in uninstall and "Uninstall" in installer
