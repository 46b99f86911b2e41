"""Static risk scan of a skill's files: what a reviewer must see before installing it.

Two sources of findings, each with file, line, rule and severity (never the matched text: a secret
found in a skill must not travel further in the report):
- static rules for the attacks seen in public marketplaces: fetch-and-execute, credential access,
  network exfiltration in scripts, instructions hidden in HTML comments, invisible or bidirectional
  Unicode, long base64 blobs in Markdown;
- the compliance engine (every default detector): secrets are high risk, strong personal identifiers
  medium.  Person names, places and URLs are too common in instructions to count.

The level of a report is its worst finding's severity (``low`` when there is none).
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from passerelle.compliance import Engine

Severity = Literal["low", "medium", "high"]
LEVELS: tuple[Severity, ...] = ("low", "medium", "high")

_SCRIPT_SUFFIXES = (".sh", ".bash", ".zsh", ".py", ".js", ".mjs", ".cjs", ".ts", ".ps1", ".rb", ".pl", ".php",
                    ".bat", ".cmd", ".go", ".lua")
_MARKDOWN_SUFFIXES = (".md", ".markdown", ".mdx", ".txt")
_SHELLS = r"(?:ba|z|k|da)?sh|python[0-9.]*|perl|ruby|node|pwsh|powershell|iex"

# (rule, severity, description, regex); applied to every text file.
_EVERYWHERE: tuple[tuple[str, Severity, str, re.Pattern[str]], ...] = (
    ("fetch-execute", "high", "downloads code and executes it", re.compile(
        r"(?:curl|wget|fetch|iwr|invoke-webrequest|irm|invoke-restmethod)\b[^\n|;]*\|\s*(?:sudo\s+)?"
        rf"(?:{_SHELLS})\b"
        r"|(?:ba|z)?sh\s+<\(\s*(?:curl|wget)"
        r"|(?:eval|source|\.)\s+[\"']?\$\(\s*(?:curl|wget)"
        r"|\b(?:exec|eval)\s*\(\s*(?:requests\.get|urllib\.request\.urlopen|urlopen|httpx\.get)\s*\("
        r"|python[0-9.]*\s+-c\s+[\"'][^\"'\n]*(?:https?://|urlopen|requests\.get)"
        r"|\biex\s*\(\s*(?:new-object\s+net\.webclient|iwr|invoke-webrequest)",
        re.IGNORECASE)),
    ("credential-access", "high", "reads credentials or dumps the environment", re.compile(
        r"(?:~|\$HOME|%USERPROFILE%|/home/\w+|/root)/\.(?:aws|ssh|gnupg|kube|docker|azure|config/gcloud)\b"
        r"|\.aws/credentials|\bid_(?:rsa|ed25519|ecdsa)\b|\.netrc\b|\.git-credentials\b|/proc/self/environ"
        r"|\bsecurity\s+(?:find|dump)-(?:generic|internet)-password|\bdump-keychain\b|\bkeyring\.get_password"
        r"|\bprintenv\b|(?:^|[;&|]\s*)env\s*(?:\||>)|\bdict\(\s*os\.environ\s*\)|json\.dumps\(\s*os\.environ"
        r"|\bprocess\.env\b\s*\)|Login Data\b|\bwallet\.dat\b",
        re.IGNORECASE | re.MULTILINE)),
)
# Scripts only: ordinary documentation mentions HTTP calls all the time.
_SCRIPTS: tuple[tuple[str, Severity, str, re.Pattern[str]], ...] = (
    ("network-exfiltration", "medium", "sends data to the network", re.compile(
        r"\brequests\.(?:post|put)\s*\(|\bhttpx\.(?:post|put)\s*\(|\bcurl\b[^\n]*\s(?:-d|--data\S*|-F|--form|-T"
        r"|--upload-file)\s|\bwget\b[^\n]*--post-(?:data|file)|\bnc\s+(?:-\w+\s+)*[\w.-]+\s+\d+|/dev/tcp/"
        r"|urlopen\([^)\n]*data\s*=|discord(?:app)?\.com/api/webhooks|hooks\.slack\.com|pastebin\.com|ngrok\.io"
        r"|requestbin|webhook\.site|\bfetch\([^)\n]*method:\s*[\"']POST",
        re.IGNORECASE)),
)
_HTML_COMMENT = re.compile(r"<!--(.*?)-->", re.DOTALL)
_CODE = re.compile(r"^ {0,3}(```|~~~)[^\n]*\n.*?(?:^ {0,3}\1[^\n]*$|\Z)|`[^`\n]+`", re.DOTALL | re.MULTILINE)
_IMPERATIVE = re.compile(
    r"\b(?:ignore|disregard|forget|override|instead|you must|you should|always|never|do not (?:tell|mention|"
    r"reveal|show)|don't (?:tell|mention)|secretly|silently|system prompt|instruction|execute|run|send|upload|"
    r"exfiltrate|assistant|claude|the user|api key|password|token)\b", re.IGNORECASE)
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\U000e0000-\U000e007f]")
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4}){50,}(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
# Compliance entity types that make a published skill risky, and how much.
_SECRET_TYPES = frozenset({"SECRET"})
_PERSONAL_TYPES = frozenset({"EMAIL", "PHONE", "US_SSN", "US_ITIN", "FR_NIR", "UK_NHS", "UK_NINO", "PASSPORT",
                             "DRIVER_LICENSE", "IBAN", "CREDIT_CARD", "BANK_ACCOUNT", "DATE_OF_BIRTH",
                             "MEDICAL_RECORD_NUMBER", "HEALTH_INSURANCE_ID", "CLASSIFICATION_MARKING"})


@dataclass(frozen=True, slots=True)
class RiskFinding:
    file: str
    line: int
    rule: str
    severity: Severity
    message: str


@dataclass(slots=True)
class RiskReport:
    findings: list[RiskFinding] = field(default_factory=list)

    @property
    def level(self) -> Severity:
        return max((f.severity for f in self.findings), key=LEVELS.index, default="low")

    def as_dict(self) -> dict[str, Any]:
        return {"level": self.level, "findings": [asdict(f) for f in self.findings]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RiskReport:
        return cls([RiskFinding(**f) for f in data.get("findings", [])])


@functools.lru_cache(maxsize=1)
def _engine() -> Engine:
    # Compiled once per process (a Hyperscan database of every detector's patterns).
    from passerelle.compliance import Engine
    from passerelle.compliance.detectors import default_detectors

    return Engine(default_detectors())


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _is_script(path: str, text: str) -> bool:
    return path.lower().endswith(_SCRIPT_SUFFIXES) or text.startswith("#!")


def _code_spans(text: str) -> list[tuple[int, int]]:
    """Fenced code blocks and inline code: a comment there is shown when rendered, not hidden."""
    return [(m.start(), m.end()) for m in _CODE.finditer(text)]


def _hidden_comments(path: str, text: str) -> list[RiskFinding]:
    out = []
    code = _code_spans(text)
    for m in _HTML_COMMENT.finditer(text):
        if any(start <= m.start() < end for start, end in code):
            continue
        if _IMPERATIVE.search(m.group(1)):
            out.append(RiskFinding(path, _line(text, m.start()), "hidden-instruction", "high",
                                   "an HTML comment (invisible when rendered) holds instructions"))
        elif m.group(1).strip():
            out.append(RiskFinding(path, _line(text, m.start()), "html-comment", "low",
                                   "an HTML comment is invisible when rendered"))
    return out


def _base64_blobs(path: str, text: str) -> list[RiskFinding]:
    out = []
    for m in _BASE64.finditer(text):
        try:
            decoded = base64.b64decode(m.group(0), validate=True)
        except (binascii.Error, ValueError):
            continue
        try:
            readable = decoded.decode("utf-8")
        except UnicodeDecodeError:
            readable = ""
        hidden = bool(readable) and _IMPERATIVE.search(readable) is not None
        out.append(RiskFinding(path, _line(text, m.start()), "base64-blob", "high" if hidden else "medium",
                               "a long base64 blob" + (" that decodes to instructions" if hidden else "")))
    return out


def _compliance(path: str, text: str) -> list[RiskFinding]:
    out = []
    for f in _engine().scan(text, _SECRET_TYPES | _PERSONAL_TYPES):
        if f.type in _SECRET_TYPES:
            out.append(RiskFinding(path, _line(text, f.start), "embedded-secret", "high",
                                   f"a secret ({f.subtype or f.type}) is embedded in the file"))
        else:
            out.append(RiskFinding(path, _line(text, f.start), "personal-data", "medium",
                                   f"personal data ({f.type}) in the file"))
    return out


def scan_text(path: str, text: str) -> list[RiskFinding]:
    found: list[RiskFinding] = []
    rules = _EVERYWHERE + (_SCRIPTS if _is_script(path, text) else ())
    for rule, severity, message, regex in rules:
        found += [RiskFinding(path, _line(text, m.start()), rule, severity, message) for m in regex.finditer(text)]
    found += [RiskFinding(path, _line(text, m.start()), "invisible-unicode", "high",
                          f"invisible or bidirectional character U+{ord(m.group(0)):04X}")
              for m in _INVISIBLE.finditer(text) if not (m.start() == 0 and m.group(0) == "\ufeff")]
    if path.lower().endswith(_MARKDOWN_SUFFIXES) or path in ("SKILL.md", "skill.md"):
        found += _hidden_comments(path, text)
        found += _base64_blobs(path, text)
    found += _compliance(path, text)
    return found


def scan_files(files: dict[str, bytes]) -> RiskReport:
    """Scan every file that is text (UTF-8); binary files are listed as unscanned (low)."""
    report = RiskReport()
    for path in sorted(files):
        try:
            text = files[path].decode("utf-8")
        except UnicodeDecodeError:
            if _is_script(path, ""):
                report.findings.append(RiskFinding(path, 1, "script-not-utf8", "medium",
                                                   "a script that is not UTF-8 text could not be scanned"))
            continue
        report.findings.extend(scan_text(path, text))
    report.findings.sort(key=lambda f: (-LEVELS.index(f.severity), f.file, f.line, f.rule))
    return report
