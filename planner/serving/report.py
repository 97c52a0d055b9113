"""DeployReport: the one result `planner deploy` builds, draws with rich and prints with --json."""

from __future__ import annotations

from pydantic import BaseModel, Field

from planner.serving.download import ModelFiles
from planner.serving.verify import Measured, Verification
from planner.types.plan import Plan


class Predicted(BaseModel):
    prompt_tokens_per_s: float | None = None
    generation_tokens_per_s: float | None = None
    generation_low: float | None = None
    generation_high: float | None = None
    basis: str = ""


class LaunchReport(BaseModel):
    method: str  # docker | native | embedded
    pid: int | None = None
    compose_project: str | None = None
    command: list[str] = Field(default_factory=list)
    log_file: str | None = None
    detached: bool = False
    state_file: str | None = None
    why: list[str] = Field(default_factory=list)  # why not a preferred method
    ignored_settings: list[str] = Field(default_factory=list)
    verified: bool = False
    verification: Verification | None = None
    measured: Measured | None = None
    predicted: Predicted = Field(default_factory=Predicted)
    comparison: list[str] = Field(default_factory=list)
    stopped: str | None = None


class DeployReport(BaseModel):
    plan: Plan
    model_path: str
    model: ModelFiles
    out_dir: str
    target: str
    files: list[str] = Field(default_factory=list)
    backups: list[str] = Field(default_factory=list)
    endpoint: str
    api_key_file: str
    alias: str
    image: str | None = None
    notes: list[str] = Field(default_factory=list)
    launch: LaunchReport | None = None
    how_to_call: str = ""


def predicted_from(plan: Plan) -> Predicted:
    s = plan.speed
    return Predicted(
        prompt_tokens_per_s=s.prompt_tokens_per_s,
        generation_tokens_per_s=s.generation_tokens_per_s,
        generation_low=s.low,
        generation_high=s.high,
        basis=s.basis,
    )


def python_snippet(endpoint: str, api_key_file: str, alias: str) -> str:
    """How to call the server from Python, with the real URL and key file."""
    return (
        "from pathlib import Path\n"
        "from openai import OpenAI\n\n"
        f"client = OpenAI(base_url={endpoint!r}, api_key=Path({api_key_file!r}).read_text().strip())\n"
        "stream = client.chat.completions.create(\n"
        f"    model={alias!r},\n"
        '    messages=[{"role": "user", "content": "Hello!"}],\n'
        "    stream=True,\n"
        ")\n"
        "for chunk in stream:\n"
        "    if chunk.choices:\n"
        '        print(chunk.choices[0].delta.content or "", end="", flush=True)\n'
    )
