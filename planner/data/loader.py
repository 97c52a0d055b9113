"""Load the YAML data files fast: a JSON copy is cached per file (keyed by path, size and mtime).

PyYAML builds Python objects slowly (a quarter of a second for the catalog and GPU database together); JSON loads
the same data ten times faster, and `planner plan` should answer in well under a second. The cache lives in
$XDG_CACHE_HOME/planner (or ~/.cache/planner); when it cannot be written, the YAML is simply parsed each time.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from planner.config import cache_dir
from planner.errors import DataFileError


def _cache_dir() -> Path:
    return cache_dir() / "data"


def load_yaml(path: Path, what: str = "planner's data file") -> Any:
    """The parsed YAML document at `path` (a fresh object each call: callers may change it). Any problem is one
    DataFileError line naming `what` and the file: missing, unreadable, not UTF-8, not YAML."""
    try:
        return _load(path)
    except FileNotFoundError:
        raise DataFileError(f"{what} {path} is missing") from None
    except UnicodeDecodeError:
        raise DataFileError(f"{what} {path} is not UTF-8 text") from None
    except OSError as exc:
        raise DataFileError(f"can't read {what} {path}: {exc.strerror or exc}") from None
    except Exception as exc:  # yaml.YAMLError, imported lazily with PyYAML
        if type(exc).__module__.startswith("yaml"):
            raise DataFileError(f"{what} {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
        raise


def load_mapping(path: Path, what: str = "planner's data file") -> dict[str, Any]:
    """load_yaml for files that hold one mapping at the top."""
    document = load_yaml(path, what)
    if not isinstance(document, dict):
        raise DataFileError(f"{what} {path} should hold a mapping")
    return document


def _load(path: Path) -> Any:
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:32]
    cached = _cache_dir() / f"{key}.json"
    try:
        return json.loads(cached.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    document = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 - a safe loader
    temp: str | None = None
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=cached.parent, delete=False, suffix=".tmp", encoding="utf-8") as f:
            temp = f.name
            json.dump(document, f, default=str)
        os.replace(temp, cached)
    except (OSError, TypeError, ValueError):
        if temp is not None:  # a half-written copy is not left behind in the cache folder
            Path(temp).unlink(missing_ok=True)
        # a read-only home or a value JSON cannot hold: parse the YAML next time too
    return document
