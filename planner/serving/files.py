"""Writing rendered files safely: atomic, with the right mode, and never over a file the user changed.

`.planner-manifest.json` in the output folder records the sha256 of every file planner wrote. A file that exists
and differs both from the new content and from what planner last wrote was edited by someone (or was never
planner's): it is only replaced with --force, and then a `.bak` copy is kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import tempfile
from pathlib import Path

from planner.errors import BadInput, EnvironmentProblem
from planner.types.untrusted import check_printable

MANIFEST = ".planner-manifest.json"
API_KEY_FILE = "api-key"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write to a temporary file in the same folder, set its mode, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)  # before any byte is written: a secret is never readable by others, not even briefly
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_writable_dir(path: Path, option: str) -> Path:
    """`path` resolved, when planner could create and write it; else one BadInput line naming `option`.

    Called where the option enters (deploy checks --out and --models-dir before it plans or downloads), so a
    typo costs a second, not a download. Nothing is created here.
    """
    check_printable(str(path), option)  # first: a NUL byte would make resolve() raise
    resolved = path.expanduser().resolve()
    try:
        str(resolved).encode("utf-8")
    except UnicodeEncodeError:  # the folder's path goes into YAML, JSON and unit files, which are UTF-8
        raise BadInput(f"{option} {str(path)!r}: not a UTF-8 path; choose a folder whose name is UTF-8") from None
    # ... and those files are line-based: a newline (or CR, U+2028...) in the path would start a new line there.
    check_printable(str(resolved), option)
    if resolved.exists() and not resolved.is_dir():
        raise BadInput(f"{option} {path} is a file, not a folder")
    existing = resolved
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise BadInput(f"{option} {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise BadInput(f"{option} {path}: no permission to write in {existing}")
    return resolved


def make_dir(path: Path) -> None:
    """mkdir -p, with the system's reason as one line when it can't (a read-only or virtual file system)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise EnvironmentProblem(f"can't create folder {path}: {err.strerror or err}") from None


def api_key_for(out_dir: Path) -> str:
    """The API key kept in out_dir/api-key (first non-comment line), or a new random one."""
    path = out_dir / API_KEY_FILE
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                return line.strip()
    return secrets.token_urlsafe(32)


def _free_backup_name(path: Path) -> Path:
    """NAME.bak, or NAME.bak.1, .2 ... when an earlier --force left one: an older backup is never replaced."""
    backup = path.with_name(path.name + ".bak")
    number = 0
    while backup.exists():
        number += 1
        backup = path.with_name(f"{path.name}.bak.{number}")
    return backup


class ManagedWriter:
    """Writes files into one folder, refusing to replace user edits unless forced."""

    def __init__(self, out_dir: Path, *, force: bool = False) -> None:
        self.out_dir = out_dir
        self.force = force
        self.manifest_path = out_dir / MANIFEST
        self.recorded: dict[str, str] = self._load()
        self.written: list[Path] = []
        self.backups: list[Path] = []

    def _load(self) -> dict[str, str]:
        try:
            data = json.loads(self.manifest_path.read_text())
            return {str(k): str(v) for k, v in data.get("files", {}).items()}
        except (OSError, ValueError, AttributeError):
            return {}

    def edited(self, name: str) -> bool:
        """True when the file exists and is not what planner last wrote there."""
        path = self.out_dir / name
        if not path.exists():
            return False
        return sha256_bytes(path.read_bytes()) != self.recorded.get(name)

    def check(self, names: list[str]) -> None:
        """Refuse up front (nothing written yet) when any of `names` was edited and --force is not given."""
        if self.force:
            return
        edited = [n for n in names if n != API_KEY_FILE and self.edited(n)]
        if edited:
            listing = ", ".join(str(self.out_dir / n) for n in edited)
            raise BadInput(
                f"{listing} changed since planner wrote {'it' if len(edited) == 1 else 'them'}; "
                "rerun with --force to replace (a .bak copy is kept)"
            )

    def write(self, name: str, content: str, mode: int) -> Path:
        path = self.out_dir / name
        data = content.encode()
        digest = sha256_bytes(data)
        if path.exists():
            current = path.read_bytes()
            if sha256_bytes(current) == digest:
                os.chmod(path, mode)
                self.recorded[name] = digest
                self.written.append(path)
                return path
            if self.edited(name):
                backup = _free_backup_name(path)
                shutil.copy2(path, backup)
                self.backups.append(backup)
        atomic_write(path, data, mode)
        self.recorded[name] = digest
        self.written.append(path)
        return path

    def keep(self, name: str) -> None:
        path = self.out_dir / name
        os.chmod(path, 0o600)
        self.written.append(path)

    def save_manifest(self) -> None:
        payload = {"written_by": "planner", "files": dict(sorted(self.recorded.items()))}
        atomic_write(self.manifest_path, (json.dumps(payload, indent=2) + "\n").encode(), 0o644)
