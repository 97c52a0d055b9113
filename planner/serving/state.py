"""What a detached deployment left running, recorded in OUT_DIR/.planner-state.json for `planner stop`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from planner.errors import BadInput
from planner.serving.files import atomic_write
from planner.types.deploy import DeployState

STATE_FILE = ".planner-state.json"
Method = Literal["docker", "native", "embedded"]


def state_path(out_dir: Path) -> Path:
    return out_dir / STATE_FILE


def save_state(state: DeployState) -> Path:
    path = state_path(Path(state.out_dir))
    atomic_write(path, (state.model_dump_json(indent=2) + "\n").encode(), 0o644)
    return path


def load_state(out_dir: Path) -> DeployState | None:
    path = state_path(out_dir)
    if not path.is_file():
        return None
    try:
        return DeployState.model_validate_json(path.read_bytes())
    except OSError as err:
        raise BadInput(f"can't read {path}: {err.strerror or err}") from None
    except ValidationError as err:
        problem = err.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise BadInput(
            f"{path} is not a planner state file ({where + ': ' if where else ''}{problem['msg']})"
        ) from None


def clear_state(out_dir: Path) -> None:
    state_path(out_dir).unlink(missing_ok=True)
