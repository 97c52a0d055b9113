"""One way every verb prints its result: the pydantic object as JSON, or drawn by its renderer."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from pydantic import BaseModel

R = TypeVar("R", bound=BaseModel)


def emit(result: R, *, json_output: bool, show: Callable[[R], None]) -> None:
    """`--json`: exactly `result.model_dump_json()` (the same object the rich view draws); otherwise `show` it."""
    if json_output:
        print(result.model_dump_json(indent=2))
    else:
        show(result)
