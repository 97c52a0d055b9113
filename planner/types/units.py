"""Sizes as people write them ("8GB", "7.5 GiB", "512MB") and as planner prints them: one parser, one formatter."""

from __future__ import annotations

import re

from pydantic import ByteSize, TypeAdapter, ValidationError

from planner.errors import BadInput

_SIZE = TypeAdapter(ByteSize)


def parse_size(text: str, *, allow_zero: bool = False) -> int:
    """Bytes from "8GB" (8e9), "8 GiB" (8 * 2**30), "512MB", "7.5GB"; a unit is required (a bare 0 is zero
    where `allow_zero`, e.g. --margin 0); bad -> BadInput."""
    cleaned = text.strip()
    if allow_zero and re.fullmatch(r"0+(\.0*)?", cleaned):
        return 0
    if re.fullmatch(r"[\d.]+", cleaned):
        raise BadInput(f"size {text!r} needs a unit, e.g. {cleaned}GB or {cleaned}GiB")
    try:
        size = int(_SIZE.validate_python(cleaned))
    except ValidationError:
        raise BadInput(f"can't read size {text!r}: write it like 8GB, 16GiB or 512MB") from None
    if size < 0 or (size == 0 and not allow_zero):
        raise BadInput(f"size {text!r} must be more than zero")
    return size


def human_bytes(n: int | float, *, binary: bool = False) -> str:
    """1.2 GB (decimal, as disks and downloads are sold) or 1.1 GiB (binary, as VRAM is)."""
    return ByteSize(int(n)).human_readable(decimal=not binary)
