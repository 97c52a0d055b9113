"""The user's GPU prices for `plan --upgrade --prices FILE`: a YAML or JSON mapping of GPU name -> price.

planner has no prices of its own and never makes one up: the advice says "cheapest" only over the cards this file
prices, in the file's own units. Names are matched as --gpu names are ("3090" is the RTX 3090); any problem with
the file is one BadInput line (exit 2), never a silently ignored row.
"""

from __future__ import annotations

import math
from pathlib import Path

from planner.data.gpus import closest_names, load_gpus, resolve_gpu_name
from planner.errors import BadInput

_MAX_BYTES = 1 << 20  # a price list is a few hundred bytes; anything this big is some other file


def load_prices(path: Path) -> dict[str, float]:
    """GPU database name -> price, from the file at `path`."""
    import yaml

    path = Path(path).expanduser()
    where = f"--prices {path}"
    try:
        if path.exists() and not path.is_file():  # a folder or a FIFO: reading would fail or never end
            raise BadInput(f"{where}: not a regular file")
        with path.open("rb") as handle:
            data = handle.read(_MAX_BYTES + 1)
    except FileNotFoundError:
        raise BadInput(f"{where}: no such file") from None
    except OSError as err:
        raise BadInput(f"{where}: can't read it ({err.strerror or err})") from None
    if len(data) > _MAX_BYTES:
        raise BadInput(f"{where}: larger than {_MAX_BYTES >> 20} MiB, not a price list")
    try:
        document = yaml.load(data.decode("utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except UnicodeDecodeError:
        raise BadInput(f"{where}: not UTF-8 text") from None
    except yaml.YAMLError as err:
        raise BadInput(f"{where}: not YAML or JSON ({' '.join(str(err).split())[:160]})") from None
    return prices_from(document, where)


def prices_from(document: object, where: str = "prices") -> dict[str, float]:
    """Validate a parsed price mapping (also what `planner.plan(prices={...})` takes)."""
    if not isinstance(document, dict) or not document:
        raise BadInput(f"{where}: expected a mapping of GPU name to price, e.g. 'RTX 3090: 700'")
    prices: dict[str, float] = {}
    for name, price in document.items():
        if isinstance(name, int) and not isinstance(name, bool):
            name = str(name)  # YAML reads `3060: 250` as a number: it is the card a user means
        if not isinstance(name, str) or not name.strip():
            raise BadInput(f"{where}: {name!r} is not a GPU name")
        if isinstance(price, bool) or not isinstance(price, int | float) or not math.isfinite(price) or price <= 0:
            raise BadInput(f"{where}: the price of {name!r} must be a positive number, not {price!r}")
        try:
            found = resolve_gpu_name(name)
        except ValueError as err:
            raise BadInput(f"{where}: {err}") from None
        if found is None:
            close = closest_names(name)
            hint = f"closest: {', '.join(close)}" if close else "`planner gpus` lists the cards planner knows"
            raise BadInput(f"{where}: unknown GPU {name!r}; {hint}")
        if found.spec not in load_gpus():  # "RTX 4090 48GB": a what-if variant, not a card one can price
            raise BadInput(f"{where}: {name!r} is not a card in planner's database (its memory size is not listed)")
        key = found.spec.name
        if key in prices:
            raise BadInput(f"{where}: {key} is priced twice ({name!r} is another name for it)")
        prices[key] = float(price)
    return prices
