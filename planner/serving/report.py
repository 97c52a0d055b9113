"""DeployReport: the one result `planner deploy` builds, draws with rich and prints with --json."""

from __future__ import annotations

from planner.types.deploy import Predicted
from planner.types.plan import Plan


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
