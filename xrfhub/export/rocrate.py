"""The store described as an RO-Crate (https://w3id.org/ro/crate), written with ``rocrate``.

The crate is the folder ``out``: its ``ro-crate-metadata.json`` describes, and the folder holds
copies of, every NeXus file of the current generation (the archival master: one per core) and
the store's manifest. Each file is a ``File`` entity with its sha256 and size; each core a
``Sample``-like ``Thing`` with its stable UUID and, when given, its IGSN; each source file the
store read is a contextual entity with its sha256 (the sources themselves are not copied: they
may be large and are not ours to redistribute); every ingest and prediction run in the store's
log is a ``CreateAction`` with its UUID, date, instrument (xrfhub or the plugin) and results.

Licence, authors and citation come from the options (the store does not keep the lab tables'
PANGAEA ``License:``/``Citation:`` records yet); a dataset DOI and core IGSNs from
``--identifiers``. Without a licence the crate says so (SPDX ``NOASSERTION``), it does not guess.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

from .. import __version__, identifiers
from ..errors import StoreError

NO_LICENCE = "https://spdx.org/licenses/NOASSERTION"
_SPDX = re.compile(r"^(?:CC-BY(?:-NC)?(?:-SA|-ND)?-\d\.\d|CC0-1\.0|MIT|Apache-2\.0|ODbL-1\.0)$", re.IGNORECASE)
#: SPDX spells these ids in mixed case; the rest are upper case
_SPDX_CASE = {"apache-2.0": "Apache-2.0", "odbl-1.0": "ODbL-1.0"}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _licence_id(text: str) -> str:
    """An SPDX URL for a licence written as an SPDX id (or PANGAEA's "Creative Commons ... (CC-BY-4.0)")."""
    m = re.search(r"\(([^()]+)\)\s*$", text.strip())
    token = (m.group(1) if m else text).strip()
    if _SPDX.match(token):
        return f"https://spdx.org/licenses/{_SPDX_CASE.get(token.lower(), token.upper())}"
    if token.startswith(("http://", "https://")):
        return token
    return ""


def _person(text: str) -> tuple[str, dict]:
    m = re.match(r"^\s*(.*?)\s*(?:<([^<>@\s]+@[^<>\s]+)>)?\s*$", text)
    name, email = m.group(1), m.group(2)
    pid = f"mailto:{email}" if email else f"#person-{re.sub(r'[^A-Za-z0-9]+', '-', name).strip('-').lower()}"
    props = {"@type": "Person", "name": name}
    if email:
        props["email"] = email
    return pid, props


def export(store, out, *, citation: str | None = None, licence: str = "", authors=(),
           identifiers_file=None) -> Path:
    """Write the RO-Crate of ``store``'s current generation into the folder ``out``."""
    from rocrate.model.contextentity import ContextEntity
    from rocrate.rocrate import ROCrate

    from ..store.generations import Store
    from ..store.nexus import read_core_summary

    st = Store(store)
    gen = st.current()
    if gen is None:
        raise StoreError(f"{store}: the store is empty; nothing to describe")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise StoreError(f"{out}: the folder exists and is not empty; give a new folder for the crate")
    manifest = gen.manifest()
    ids = identifiers.read_identifiers(identifiers_file) if identifiers_file else {}

    crate = ROCrate()
    root = crate.root_dataset
    root["name"] = f"xrfhub store {Path(str(store)).resolve().name}, generation {gen.name}"
    root["description"] = ("XRF core-scanner spectra and lab data: one NeXus/HDF5 file per core "
                           "(application definition NXxrf_core_scan), as archived by xrfhub.")
    root["datePublished"] = manifest["created"]
    root["identifier"] = identifiers.run_uuid(f"store:{Path(str(store)).resolve()}#{gen.name}")
    lic_url = _licence_id(licence) if licence else ""
    lic = crate.add(ContextEntity(crate, lic_url or NO_LICENCE, properties={
        "@type": "CreativeWork", "name": licence or "no licence stated (pass --licence)"}))
    root["license"] = lic
    if citation:
        root["creditText"] = citation
    if ids.get(identifiers.DATASET, {}).get("doi"):
        doi = ids[identifiers.DATASET]["doi"]
        root["identifier"] = f"https://doi.org/{doi}"
        root["sameAs"] = {"@id": f"https://doi.org/{doi}"}
    people = []
    for text in authors:
        pid, props = _person(text)
        people.append(crate.add(ContextEntity(crate, pid, properties=props)))
    if people:
        root["author"] = people
    software = crate.add(ContextEntity(crate, "https://github.com/xrfhub/xrfhub", properties={
        "@type": "SoftwareApplication", "name": "xrfhub", "version": __version__,
        "url": "https://github.com/xrfhub/xrfhub"}))
    nxdl = crate.add(ContextEntity(crate, "#NXxrf_core_scan", properties={
        "@type": "CreativeWork", "name": "NeXus application definition NXxrf_core_scan",
        "description": "schemas/NXxrf_core_scan.nxdl.xml of xrfhub"}))

    out.mkdir(parents=True, exist_ok=True)
    cores = {}
    for core, info in sorted(manifest["cores"].items()):
        thing = {"@type": "Thing", "name": core, "identifier": identifiers.core_uuid(core),
                 "description": f"sediment core {core}: {info.get('n_spectra', 0)} spectra, "
                                f"{info.get('n_samples', 0)} lab samples"}
        # an IGSN given now wins over one the lab tables put in the NeXus file
        igsn = ids.get(core, {}).get("igsn") or read_core_summary(gen.path / info["file"])["igsn"]
        if igsn:
            thing["identifier"] = [identifiers.core_uuid(core), f"igsn:{igsn}"]
            thing["sameAs"] = {"@id": f"https://igsn.org/{igsn}"}
        cores[core] = crate.add(ContextEntity(crate, f"#core-{identifiers.core_uuid(core)}", properties=thing))
        src = gen.path / info["file"]
        dest = Path(info["file"])
        (out / dest.parent).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, out / dest)
        crate.add_file(out / dest, dest_path=str(dest), properties={
            "name": f"NeXus file of core {core}", "encodingFormat": "application/x-hdf5",
            "contentSize": str(src.stat().st_size), "sha256": _sha256(src),
            "conformsTo": nxdl, "about": cores[core]})
    crate.add_file(gen.path / "manifest.json", dest_path="manifest.json", properties={
        "name": "store manifest (sources, cores, checksums)", "encodingFormat": "application/json",
        "contentSize": str((gen.path / "manifest.json").stat().st_size),
        "sha256": _sha256(gen.path / "manifest.json")})

    sources = {}
    for name, info in sorted(manifest["sources"].items()):
        sources[name] = crate.add(ContextEntity(crate, f"#source-{info['sha256'][:16]}", properties={
            "@type": "CreativeWork", "name": name, "sha256": info["sha256"],
            "contentSize": str(info.get("size", "")), "encodingFormat": info.get("format", ""),
            "description": "source file read by xrfhub (not included in the crate)"}))

    for i, event in enumerate(st.read_log()):
        action = event.get("action", "ingest")
        run = event.get("run") or f"{action}@{event.get('date', i)}"
        props = {"name": f"xrfhub {action}" + (f" run {event['run']}" if event.get("run") else ""),
                 "identifier": identifiers.run_uuid(run), "startTime": event.get("date", ""),
                 "description": json.dumps({k: v for k, v in event.items() if k not in ("date",)},
                                           sort_keys=True, default=str)[:2000]}
        obj = [sources[s] for s in event.get("added", []) + event.get("replaced", []) if s in sources]
        result = [cores[c] for c in event.get("cores", []) if c in cores]
        crate.add_action(software, identifier=f"#action-{identifiers.run_uuid(run)}", object=obj or None,
                         result=result or None, properties=props)
    # the crate is written next to the copied files; a crash leaves no ro-crate-metadata.json
    crate.write(out)
    return out
