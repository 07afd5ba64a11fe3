"""The library's config file, `papers.toml` at the library root: which notes to read, and how.

When the reader guesses a file's shape wrong, the user says so here, without editing notes:

    include = ["**/*.md", "*.bib"]      # only these (default: every note file)
    exclude = ["drafts/scratch.md", "templates/*"]

    [[files]]
    glob = "drafts/*.md"
    read_as = "paper"                   # or "list"; "auto" is the default guess

    [zotero]
    data_dir = "~/Zotero"               # read this Zotero library too (papers import --zotero)

Globs are matched against the path under notes/ with '/' separators; `*` matches any
characters, '/' included, so `drafts/*` covers the whole folder. For `read_as`, the last
[[files]] entry that matches wins. A bad file is one clear error (ConfigError).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from search.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONFIG_NAME = "papers.toml"
READ_AS = ("auto", "list", "paper")


@dataclass(frozen=True)
class FileRule:
    glob: str
    read_as: str


@dataclass(frozen=True)
class Config:
    """What papers.toml says (the defaults when there is none)."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    files: tuple[FileRule, ...] = ()
    path: Path | None = None
    zotero_dir: Path | None = None  # the Zotero data directory to read, from [zotero] data_dir
    raw: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def included(self, rel: str) -> bool:
        """Whether the note at `rel` (path under notes/) is read at all."""
        if self.include and not any(_match(rel, g) for g in self.include):
            return False
        return not any(_match(rel, g) for g in self.exclude)

    def rule_for(self, rel: str) -> FileRule | None:
        """The [[files]] entry that decides how `rel` is read (the last that matches)."""
        found = None
        for rule in self.files:
            if _match(rel, rule.glob):
                found = rule
        return found

    def read_as(self, rel: str) -> str:
        rule = self.rule_for(rel)
        return rule.read_as if rule is not None else "auto"

    def digest(self) -> str:
        """Changes whenever what the config says changes."""
        data = [list(self.include), list(self.exclude), [(r.glob, r.read_as) for r in self.files]]
        return hashlib.sha256(json.dumps(data).encode()).hexdigest()[:16]


def _match(rel: str, glob: str) -> bool:
    glob = glob.strip().lstrip("/")
    return fnmatchcase(rel, glob) or fnmatchcase(rel, glob.replace("**/", ""))


def load_config(root: Path) -> Config:
    """The config of the library at `root` (defaults if it has no papers.toml).

    Raises:
        ConfigError: the file is not valid TOML or has a setting that is not allowed.
    """
    path = Path(root) / CONFIG_NAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Config()
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from None
    return _config_from(raw, path)


def _config_from(raw: dict[str, Any], path: Path) -> Config:
    known = {"include", "exclude", "files", "zotero"}

    def globs(key: str) -> tuple[str, ...]:
        value = raw.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(g, str) and g for g in value):
            raise ConfigError(f"{path}: `{key}` must be a list of glob strings")
        return tuple(value)

    rules = []
    entries = raw.get("files", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: `files` must be [[files]] tables with `glob` and `read_as`")
    for n, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}: [[files]] entry {n} is not a table")
        glob, read_as = entry.get("glob"), entry.get("read_as", "auto")
        if not isinstance(glob, str) or not glob:
            raise ConfigError(f"{path}: [[files]] entry {n} needs a `glob` string")
        if read_as not in READ_AS:
            raise ConfigError(
                f'{path}: [[files]] entry {n}: read_as must be "list", "paper" or "auto", '
                f"not {read_as!r}"
            )
        unknown = set(entry) - {"glob", "read_as"}
        if unknown:
            raise ConfigError(f"{path}: [[files]] entry {n}: unknown key {sorted(unknown)[0]!r}")
        rules.append(FileRule(glob, read_as))
    # Other tables belong to other tools or later versions: left alone here.
    for key, value in raw.items():
        if key not in known and not isinstance(value, dict):
            raise ConfigError(f"{path}: unknown setting {key!r}")
    return Config(
        globs("include"), globs("exclude"), tuple(rules), path, _zotero_dir(raw, path), raw
    )


def _zotero_dir(raw: dict[str, Any], path: Path) -> Path | None:
    table = raw.get("zotero")
    if table is None:
        return None
    data_dir = table.get("data_dir") if isinstance(table, dict) else None
    if not isinstance(data_dir, str) or not data_dir.strip():
        raise ConfigError(f'{path}: [zotero] needs data_dir = "/path/to/Zotero"')
    p = Path(data_dir).expanduser()
    return p if p.is_absolute() else (path.parent / p)


_TABLE = re.compile(r"^\s*\[([^\]]*)\]\s*(#.*)?$")


def set_zotero_dir(root: Path, data_dir: Path) -> Path:
    """Record `data_dir` as the library's Zotero directory in `root/papers.toml`, keeping
    every other line of the file as it is. Returns the config file's path.

    Raises:
        ConfigError: the existing file is not valid (it is then left untouched).
    """
    load_config(root)  # refuse to edit a file that is not valid
    path = Path(root) / CONFIG_NAME
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        lines = []
    entry = f"data_dir = {json.dumps(str(data_dir), ensure_ascii=False)}"
    tables = [(i, m.group(1).strip()) for i, ln in enumerate(lines) if (m := _TABLE.match(ln))]
    start = next((i for i, name in tables if name == "zotero"), None)
    if start is None:
        if lines and lines[-1].strip():
            lines.append("")
        lines += ["[zotero]", entry]
    else:
        end = next((i for i in range(start + 1, len(lines)) if _TABLE.match(lines[i])), len(lines))
        keyed = [i for i in range(start + 1, end) if re.match(r"\s*data_dir\s*=", lines[i])]
        if keyed:
            lines[keyed[0]] = entry
        else:
            lines.insert(start + 1, entry)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
