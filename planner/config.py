"""Every environment variable planner reads, in one place, read at call time (tests and users may change them).

HF_ENDPOINT      the hub to talk to (default https://huggingface.co), as huggingface_hub reads it
HF_TOKEN         the hub token; unset, huggingface_hub's own lookup (the token saved under HF_HOME) applies
HF_HUB_OFFLINE   1/true/yes/on: never contact the hub, plan from the offline catalog
HF_HOME          where huggingface_hub keeps its cache (read by huggingface_hub itself)
PLANNER_DEBUG    set: an internal error shows its traceback instead of one line
XDG_CACHE_HOME   where planner keeps its parsed-data cache (default ~/.cache/planner)
SUDO_USER        under sudo, the user a rendered systemd unit runs as
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_ENDPOINT = "https://huggingface.co"
_TRUE = ("1", "true", "yes", "on")


def hub_endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def hub_token() -> str | None:
    """HF_TOKEN when set; None lets huggingface_hub use the token saved under HF_HOME."""
    return os.environ.get("HF_TOKEN") or None


def hub_offline() -> bool:
    return (os.environ.get("HF_HUB_OFFLINE") or "").strip().lower() in _TRUE


def debug() -> bool:
    return bool(os.environ.get("PLANNER_DEBUG"))


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "planner"


def sudo_user() -> str | None:
    return os.environ.get("SUDO_USER") or None
