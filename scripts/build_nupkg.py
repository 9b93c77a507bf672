#!/usr/bin/env python3
"""Build the Chocolatey package of the agent, dist/dashfleet-agent.<version>.nupkg, on any OS.

A .nupkg is a zip in the Open Packaging Conventions layout that `choco pack` writes: the nuspec at
the root, `[Content_Types].xml`, `_rels/.rels` (pointing at the nuspec and the core properties),
`package/services/metadata/core-properties/<id>.psmdcp`, and the payload under `tools/`:
chocolateyinstall.ps1 / chocolateyuninstall.ps1 (packaging/chocolatey/tools), the project's
installer scripts/install_windows_agent.ps1 they call, the agent exe, `dashfleet-agent.exe.ignore`
(no Chocolatey shim on PATH: the installer copies the exe to Program Files) and VERIFICATION.txt
with the exe's SHA-256.

    scripts/build_nupkg.py [--exe dist/dashfleet-agent.exe] [--out dist]

The Windows exe is built on Windows (agent/pyinstaller/dashfleet-agent.spec). The build is
reproducible: fixed timestamps, names derived from the content.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tomllib
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHOCO = REPO / "packaging" / "chocolatey"
NUSPEC = CHOCO / "dashfleet-agent.nuspec"
NS = "http://schemas.microsoft.com/packaging/2015/06/nuspec.xsd"
REQUIRED = ("id", "version", "title", "authors", "description")
EPOCH = (2020, 1, 1, 0, 0, 0)

CONTENT_TYPES = {
    "rels": "application/vnd.openxmlformats-package.relationships+xml",
    "psmdcp": "application/vnd.openxmlformats-package.core-properties+xml",
}


class BuildError(Exception):
    """Something the package cannot be built without; the message says what to do."""


def project_version() -> str:
    with open(REPO / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)["project"]["version"]


def read_nuspec(path: Path = NUSPEC) -> tuple[ET.ElementTree, dict[str, str]]:
    """The nuspec and its metadata fields; a missing required field is a BuildError."""
    ET.register_namespace("", NS)
    tree = ET.parse(path)
    meta = tree.getroot().find(f"{{{NS}}}metadata")
    if meta is None:
        raise BuildError(f"{path}: no <metadata> in the {NS} namespace")
    fields = {child.tag.split("}", 1)[1]: (child.text or "").strip() for child in meta}
    missing = [name for name in REQUIRED if not fields.get(name)]
    if missing:
        raise BuildError(f"{path}: required field(s) missing or empty: {', '.join(missing)}")
    return tree, fields


def packed_nuspec(tree: ET.ElementTree) -> bytes:
    """The nuspec as choco pack stores it: without the <files> element (already applied)."""
    root = tree.getroot()
    for files in root.findall(f"{{{NS}}}files"):
        root.remove(files)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="utf-8")


def _xml_text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def build(exe: Path, out_dir: Path) -> Path:
    if not exe.is_file():
        raise BuildError(f"{exe}: the Windows agent exe is missing: build it on Windows with "
                         "agent/pyinstaller/dashfleet-agent.spec, then pass --exe PATH")
    tree, meta = read_nuspec()
    version = project_version()
    if meta["version"] != version:
        raise BuildError(f"{NUSPEC}: version {meta['version']} differs from pyproject.toml's {version}: "
                         "make them the same")
    package_id = meta["id"]
    exe_bytes = exe.read_bytes()
    digest = hashlib.sha256(exe_bytes).hexdigest().upper()
    verification = (
        "VERIFICATION\r\nThe embedded dashfleet-agent.exe is the DashFleet agent built with PyInstaller from "
        "agent/pyinstaller/dashfleet-agent.spec of this version.\r\n"
        "To verify it, compare its checksum with the one of the release's exe:\r\n"
        "  Get-FileHash tools\\dashfleet-agent.exe -Algorithm SHA256\r\n"
        f"  SHA256: {digest}\r\n")
    payload = {
        f"{package_id}.nuspec": packed_nuspec(tree),
        "tools/chocolateyinstall.ps1": (CHOCO / "tools" / "chocolateyinstall.ps1").read_bytes(),
        "tools/chocolateyuninstall.ps1": (CHOCO / "tools" / "chocolateyuninstall.ps1").read_bytes(),
        "tools/install_windows_agent.ps1": (REPO / "scripts" / "install_windows_agent.ps1").read_bytes(),
        "tools/dashfleet-agent.exe": exe_bytes,
        "tools/dashfleet-agent.exe.ignore": b"",
        "tools/VERIFICATION.txt": verification.encode(),
    }
    core_name = hashlib.sha256(b"".join(payload.values())).hexdigest()[:32]
    core_path = f"package/services/metadata/core-properties/{core_name}.psmdcp"
    payload[core_path] = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<coreProperties xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xmlns="http://schemas.openxmlformats.org/package/2006/metadata/core-properties">'
        f"<dc:creator>{_xml_text(meta['authors'])}</dc:creator>"
        f"<dc:description>{_xml_text(meta['description'])}</dc:description>"
        f"<dc:identifier>{_xml_text(package_id)}</dc:identifier>"
        f"<version>{_xml_text(version)}</version>"
        f"<keywords>{_xml_text(meta.get('tags', ''))}</keywords>"
        f"<dc:title>{_xml_text(meta['title'])}</dc:title>"
        "<lastModifiedBy>DashFleet scripts/build_nupkg.py</lastModifiedBy>"
        "</coreProperties>").encode()
    payload["_rels/.rels"] = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'<Relationship Type="http://schemas.microsoft.com/packaging/2010/07/manifest" '
        f'Target="/{package_id}.nuspec" Id="R{core_name[:16]}" />'
        '<Relationship Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" '
        f'Target="/{core_path}" Id="R{core_name[16:]}" />'
        "</Relationships>").encode()
    extensions = sorted({name.rsplit(".", 1)[-1] for name in payload if "." in name.rsplit("/", 1)[-1]})
    payload["[Content_Types].xml"] = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        + "".join(f'<Default Extension="{ext}" ContentType="{CONTENT_TYPES.get(ext, "application/octet")}" />'
                  for ext in extensions)
        + "</Types>").encode()

    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{package_id}.{version}.nupkg"
    partial = target.with_suffix(".nupkg.partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in ["_rels/.rels", f"{package_id}.nuspec", *sorted(n for n in payload if n.startswith("tools/")),
                     core_path, "[Content_Types].xml"]:
            info = zipfile.ZipInfo(name, EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, payload[name])
    partial.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exe", type=Path, default=REPO / "dist" / "dashfleet-agent.exe",
                        help="the Windows agent exe (default dist/dashfleet-agent.exe)")
    parser.add_argument("--out", type=Path, default=REPO / "dist", help="output folder (default dist)")
    args = parser.parse_args(argv)
    try:
        print(build(args.exe, args.out))
    except (BuildError, ET.ParseError, OSError) as exc:
        print(f"build_nupkg.py: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
