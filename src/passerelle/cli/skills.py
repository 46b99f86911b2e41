"""``passerelle skills ...``: validate, sign, publish, install and inspect Agent Skills.

    passerelle skills validate DIR [--lenient] [--json]
    passerelle skills keygen --out KEY.pem [--register PUBLISHER --tenant T]
    passerelle skills publish DIR|ZIP [--version V] [--key KEY.pem --publisher P] [--shared] [--tag T]...
    passerelle skills install|uninstall NAME [--version V] [--scope tenant|team|key --id ID]
    passerelle skills list|search|show|verify|yank|import ...

Every command takes --json.  Exit codes: 0 done, 1 refused (invalid skill, not found, conflict,
verification failed), 2 bad config or store unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from passerelle.cli.options import add_store_options, report_error
from passerelle.skills import signing
from passerelle.skills.archive import ArchiveError, read_source
from passerelle.skills.importer import MarketplaceError, import_skills
from passerelle.skills.manifest import digest
from passerelle.skills.records import SearchQuery, Skill, SkillVersion
from passerelle.skills.registry import SkillError, SkillRegistry
from passerelle.skills.spec import validate_dir
from passerelle.stores.base import Conflict, NotFound

Output = tuple[Any, str]
Command = Callable[[SkillRegistry, argparse.Namespace], Awaitable[Output]]
_REFUSED = (SkillError, ArchiveError, MarketplaceError, NotFound, Conflict, signing.SigningKeyError, ValueError)


class Failed(Exception):
    """The command ran and its answer is a failure (e.g. verification): print it, exit 1."""

    def __init__(self, payload: Any, text: str) -> None:
        super().__init__(text)
        self.payload, self.text = payload, text


def skill_view(s: Skill) -> dict[str, Any]:
    return {"id": s.id, "name": s.name, "display_title": s.display_title, "tenant": s.tenant_id,
            "visibility": s.visibility, "latest_version": s.latest_version, "installs": s.install_count,
            "created_at": s.created_at, "updated_at": s.updated_at}


def version_view(v: SkillVersion, report: bool = False) -> dict[str, Any]:
    view = {"version": v.version, "api_version": v.api_version, "name": v.name, "description": v.description,
            "digest": v.digest, "signed": v.signature is not None, "risk_level": v.risk_level,
            "tags": list(v.tags), "files": v.file_count, "bytes": v.total_bytes, "created_at": v.created_at,
            "yanked": v.yanked_at is not None}
    if report:
        view["risk_report"] = v.risk_report
    return view


def _risk_text(report: dict[str, Any]) -> str:
    lines = [f"risk: {report['level']}"]
    lines += [f"  {f['severity']:<6} {f['file']}:{f['line']}  {f['rule']}: {f['message']}" for f in report["findings"]]
    return "\n".join(lines)


# -- commands over the registry ---------------------------------------------------------------------

async def publish(reg: SkillRegistry, a: argparse.Namespace) -> Output:
    files = await asyncio.to_thread(read_source, Path(a.source), reg.policy.limits)
    signature = None
    if a.key:
        if not a.publisher:
            raise SkillError("--key needs --publisher: the name its public key is registered under")
        pem = await asyncio.to_thread(Path(a.key).read_bytes)
        signature = signing.sign(signing.load_private(pem), digest(files.files))
    v = await reg.publish(a.tenant, files, version=a.version, publisher=a.publisher, signature=signature,
                          visibility="shared" if a.shared else "private", tags=a.tag or (), display_title=a.title)
    text = f"published {v.name} {v.version} ({v.digest}, {'signed' if signature else 'unsigned'})\n"
    return version_view(v, report=True), text + _risk_text(v.risk_report)


async def install(reg: SkillRegistry, a: argparse.Namespace) -> Output:
    scope, scope_id = a.scope, a.scope_id or (a.tenant if a.scope == "tenant" else None)
    if scope_id is None:
        raise SkillError(f"--id is required with --scope {scope}")
    done = await reg.install(a.tenant, scope, scope_id, a.name, a.version)
    follows = f"pinned to {done.pin}" if done.pin else "following the latest release"
    return asdict(done), f"installed {a.name} for {scope} {scope_id}, {follows}"


async def uninstall(reg: SkillRegistry, a: argparse.Namespace) -> Output:
    scope_id = a.scope_id or (a.tenant if a.scope == "tenant" else None)
    if scope_id is None:
        raise SkillError(f"--id is required with --scope {a.scope}")
    if not await reg.uninstall(a.tenant, a.scope, scope_id, a.name):
        raise NotFound(f"{a.name} is not installed for {a.scope} {scope_id}")
    return {"name": a.name, "uninstalled": True}, f"uninstalled {a.name} for {a.scope} {scope_id}"


async def list_(reg: SkillRegistry, a: argparse.Namespace) -> Output:
    if a.installed:
        rows = await reg.installs(a.tenant, a.team, a.key)
        views = [{"name": s.name, "version": v.version, "scope": i.scope, "scope_id": i.scope_id, "pin": i.pin}
                 for i, s, v in rows]
        return views, "\n".join(f"{x['name']:<32} {x['version']:<14} {x['scope']}:{x['scope_id']}"
                                + (" (pinned)" if x["pin"] else "") for x in views) or "nothing installed"
    skills = [skill_view(s) for s in await reg.list_skills(a.tenant)]
    return skills, "\n".join(f"{s['name']:<32} {s['latest_version'] or '-':<14} {s['visibility']:<8} "
                             f"{s['installs']} installs" for s in skills) or "no skills"


async def search(reg: SkillRegistry, a: argparse.Namespace) -> Output:
    hits = await reg.search(a.tenant, SearchQuery(" ".join(a.text), a.publisher, a.tag, a.max_risk, a.limit))
    views = [{**skill_view(h.skill), "version": h.version.version, "description": h.version.description,
              "risk_level": h.version.risk_level, "publisher": h.publisher, "rank": h.rank} for h in hits]
    return views, "\n".join(f"{v['name']:<32} {v['version']:<10} risk {v['risk_level']:<6} {v['description'][:60]}"
                            for v in views) or "no match"


async def show(reg: SkillRegistry, a: argparse.Namespace) -> Output:
    skill, versions = await reg.show(a.tenant, a.name)
    chosen = next((v for v in versions if a.version in (v.version, v.api_version)), None) if a.version else \
        next((v for v in versions if v.version == skill.latest_version), versions[-1] if versions else None)
    if a.version and chosen is None:
        raise NotFound(f"version {a.version} of {a.name} not found")
    view = {**skill_view(skill), "versions": [version_view(v) for v in versions],
            "selected": version_view(chosen, report=True) if chosen else None}
    lines = [f"{skill.name} ({skill.id}) {skill.visibility}, {skill.install_count} installs"]
    lines += [f"  {v.version:<14} {v.digest[:19]}… {'signed' if v.signature else 'unsigned':<8} risk {v.risk_level}"
              + (" YANKED" if v.yanked_at else "") for v in versions]
    if chosen:
        lines += [f"{chosen.version}: {chosen.description}", _risk_text(chosen.risk_report)]
    return view, "\n".join(lines)


async def verify(reg: SkillRegistry, a: argparse.Namespace) -> Output:
    result = await reg.verify(a.tenant, a.name, a.version)
    view = {**asdict(result), "ok": result.ok}
    text = (f"{a.name} {result.version}: digest {'ok' if result.digest == result.recomputed else 'MISMATCH'}, "
            f"signature {result.signature}" + (f", changed files: {', '.join(result.tampered_files)}"
                                               if result.tampered_files else ""))
    if not result.ok:
        raise Failed(view, text)
    return view, text


async def yank(reg: SkillRegistry, a: argparse.Namespace) -> Output:
    v = await reg.yank(a.tenant, a.name, a.version, undo=a.undo)
    return version_view(v), f"{'un-yanked' if a.undo else 'yanked'} {a.name} {v.version}"


async def import_(reg: SkillRegistry, a: argparse.Namespace) -> Output:
    results = await import_skills(reg, a.tenant, Path(a.path), visibility="shared" if a.shared else "private",
                                  tags=a.tag or ())
    views = [asdict(r) for r in results]
    text = "\n".join(f"{r.source}: " + (f"ERROR {r.error}" if r.error else f"{r.name} {r.version} risk {r.risk_level}")
                     for r in results) or "no skills found"
    if results and all(r.error for r in results):
        raise Failed(views, text)
    return views, text


async def publisher_add(reg: SkillRegistry, a: argparse.Namespace) -> Output:
    p = await reg.add_publisher(a.tenant, a.name, a.public_key)
    return asdict(p), f"registered publisher {p.name} in tenant {p.tenant_id}"


# -- commands without the registry ------------------------------------------------------------------

def run_validate(a: argparse.Namespace) -> int:
    path = Path(a.dir)
    if not path.is_dir():
        print(f"passerelle skills validate: {a.dir}: not a directory", file=sys.stderr)
        return 2
    doc = validate_dir(path, "lenient" if a.lenient else "strict")
    if a.json:
        print(json.dumps({"valid": doc.ok, "name": doc.name, "problems": [p.as_dict() for p in doc.problems]},
                         indent=2))
    else:
        for problem in doc.problems:
            print(str(problem))
        print(f"{path.name}: {'valid' if doc.ok else 'invalid'}")
    return 0 if doc.ok else 1


def run_keygen(a: argparse.Namespace) -> int:
    pem, public = signing.generate()
    out = Path(a.out)
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never overwrite an existing key
    except OSError as exc:
        report_error(a.json, "invalid_request_error", f"cannot create {out}: {exc.strerror}")
        return 1
    with os.fdopen(fd, "w") as fh:
        fh.write(pem)
    if a.register:
        a.name, a.public_key = a.register, public
        code = asyncio.run(_with_registry(publisher_add, a, quiet=True))
        if code:
            out.unlink()  # an unregistered key is of no use: do not leave it behind
            return code
    print(json.dumps({"private_key_file": str(out), "public_key": public, "publisher": a.register}) if a.json
          else public)
    return 0


def _run_registry(command: Command, a: argparse.Namespace) -> int:
    return asyncio.run(_with_registry(command, a))


async def _with_registry(command: Command, a: argparse.Namespace, quiet: bool = False) -> int:
    from passerelle.cli.serve import load, resolve_home
    from passerelle.skills.factory import open_skill_registry

    config = load(a)
    if config is None:
        return 2
    try:
        registry = await open_skill_registry(config, resolve_home(a, config))
    except Exception as exc:
        print(f"passerelle: cannot open the skills store: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 2
    try:
        payload, text = await command(registry, a)
    except Failed as failed:
        print(json.dumps(failed.payload, indent=2) if a.json else failed.text)
        return 1
    except _REFUSED as exc:
        problems = [p.as_dict() for p in getattr(exc, "problems", [])]
        kind = "not_found_error" if isinstance(exc, NotFound) else "invalid_request_error"
        report_error(a.json, kind, str(exc), problems=problems)
        return 1
    except OSError as exc:
        report_error(a.json, "invalid_request_error", f"{exc.strerror or exc}: {getattr(exc, 'filename', '')}")
        return 1
    finally:
        await registry.aclose()
    if not quiet:
        print(json.dumps(payload, indent=2, default=str) if a.json else text)
    return 0


def _common(p: argparse.ArgumentParser, func: Command) -> argparse.ArgumentParser:
    add_store_options(p)
    p.add_argument("--tenant", default="default", help="the acting tenant (default: default)")
    p.set_defaults(func=lambda a: _run_registry(func, a))
    return p


def _scope(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scope", choices=("tenant", "team", "key"), default="tenant")
    p.add_argument("--id", dest="scope_id", help="team id (tenant/team) or key id; the tenant itself by default")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    g = sub.add_parser("skills", help="the skills marketplace: validate, publish, install, search, verify") \
        .add_subparsers(dest="action", required=True)
    p = g.add_parser("validate", help="check a skill folder against the Agent Skills specification")
    p.add_argument("dir")
    p.add_argument("--lenient", action="store_true", help="loading rules: only unusable skills are errors")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_validate)
    p = _common(g.add_parser("keygen", help="create an Ed25519 key pair; prints the public key"), publisher_add)
    p.add_argument("--out", required=True, help="where to write the private key (PEM, mode 0600, never overwritten)")
    p.add_argument("--register", metavar="PUBLISHER", help="also register the public key as this publisher")
    p.set_defaults(func=run_keygen)
    p = _common(g.add_parser("publisher", help="register a publisher's public key in a tenant"), publisher_add)
    p.add_argument("name")
    p.add_argument("public_key", help="ed25519:<base64>")
    p = _common(g.add_parser("publish", help="publish a folder or zip as a new immutable version"), publish)
    p.add_argument("source")
    p.add_argument("--version", help="semver (default: metadata.version, else the next patch)")
    p.add_argument("--key", help="the publisher's private key (PEM) to sign the content digest with")
    p.add_argument("--publisher")
    p.add_argument("--shared", action="store_true", help="in the shared catalog (every tenant sees it)")
    p.add_argument("--tag", action="append")
    p.add_argument("--title", help="display title (default: the name)")
    for name, func, helptext in (("install", install, "install for a tenant, team or key"),
                                 ("uninstall", uninstall, "remove an install")):
        p = _common(g.add_parser(name, help=helptext), func)
        p.add_argument("name")
        _scope(p)
        if name == "install":
            p.add_argument("--version", help="pin this version (default: follow the latest release)")
    p = _common(g.add_parser("list", help="the skills a tenant sees, or what a key has installed"), list_)
    p.add_argument("--installed", action="store_true")
    p.add_argument("--team")
    p.add_argument("--key")
    p = _common(g.add_parser("search", help="full-text search"), search)
    p.add_argument("text", nargs="*")
    p.add_argument("--publisher")
    p.add_argument("--tag")
    p.add_argument("--max-risk", choices=("low", "medium", "high"))
    p.add_argument("--limit", type=int, default=20)
    p = _common(g.add_parser("show", help="a skill, its versions and a version's risk report"), show)
    p.add_argument("name")
    p.add_argument("--version")
    for name, func, helptext in (("verify", verify, "re-check a version's digest and signature"),
                                 ("yank", yank, "hide a version from new installs")):
        p = _common(g.add_parser(name, help=helptext), func)
        p.add_argument("name")
        p.add_argument("version")
        if name == "yank":
            p.add_argument("--undo", action="store_true")
    p = _common(g.add_parser("import", help="import a directory of skills or a plugin marketplace"), import_)
    p.add_argument("path")
    p.add_argument("--shared", action="store_true")
    p.add_argument("--tag", action="append")
