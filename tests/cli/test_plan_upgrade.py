"""`planner plan --upgrade [--prices FILE]` as a user runs it: the done-when command of issue 14, the JSON, the
table, and a bad price file as one line with exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
DONE_WHEN = ["plan", "llama-3.3-70b", "--quant", "Q4_K_M", "--gpu", "RTX 3090", "--ram", "32GB", "--upgrade"]


def planner(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "160"}
    env.pop("PLANNER_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "planner", *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120
    )


def test_the_done_when_command_lists_changes_that_fix_it_with_their_speeds() -> None:
    proc = planner(*DONE_WHEN, "--offline")
    assert proc.returncode == 0, proc.stderr
    table = proc.stdout[proc.stdout.index("Upgrades (each change re-planned)") :]
    assert "a second RTX 3090" in table and "--gpu '2x RTX 3090'" in table
    assert "RAM 32 GB -> 48 GB" in table and "--ram 48GB" in table
    assert "price" not in table.splitlines()[2]  # the header: no price column without --prices
    assert "no prices given" in table

    plan = json.loads(planner(*DONE_WHEN, "--offline", "--json").stdout)
    ups = plan["upgrades"]
    fixing = [u for u in ups if u["fixes"]]
    assert len(fixing) >= 3
    for up in ups:
        for key in ("change", "kind", "options", "fits", "fixes", "generation_tokens_per_s", "ctx_size", "price"):
            assert key in up
        assert up["price"] is None
    for up in fixing:
        assert up["fits"] and up["generation_tokens_per_s"] >= 5 and up["ctx_size"] >= 4096
    # the second card's row is the plan `--gpu "2x RTX 3090"` gives, to the digit
    second = next(u for u in ups if u["kind"] == "second_gpu")
    again = json.loads(planner(*DONE_WHEN[:5], "2x RTX 3090", "--ram", "32GB", "--offline", "--json").stdout)
    assert again["speed"]["generation_tokens_per_s"] == second["generation_tokens_per_s"]
    assert again["settings"]["ctx_size"] == second["ctx_size"]


def test_prices_from_a_file_rank_the_cards(tmp_path: Path) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text("RTX 3090: 700\nRTX A6000: 4000\nQuadro RTX 8000: 2500\n3060: 250\n", encoding="utf-8")
    proc = planner(*DONE_WHEN, "--offline", "--prices", str(prices), "--json")
    assert proc.returncode == 0, proc.stderr
    ups = json.loads(proc.stdout)["upgrades"]
    cards = [u for u in ups if u["kind"] == "gpu"]
    assert [u["options"][1] for u in cards] == ["Quadro RTX 8000", "RTX A6000"]
    assert [u["price"] for u in cards] == [2500, 4000]
    as_json = tmp_path / "prices.json"
    as_json.write_text(json.dumps({"RTX 3090": 700, "Quadro RTX 8000": 2500}), encoding="utf-8")
    table = planner(*DONE_WHEN, "--offline", "--prices", str(as_json)).stdout
    header = table[table.index("Upgrades") :].splitlines()[2]
    assert "price" in header and "2500" in table


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("- RTX 3090\n- 700\n", "expected a mapping"),
        ("RTX 9999: 700\n", "unknown GPU 'RTX 9999'"),
        ("RTX 3090: -5\n", "must be a positive number"),
        ("RTX 3090: cheap\n", "must be a positive number"),
        ("RTX 3090: [700\n", "not YAML or JSON"),
        ("RTX 3090: 700\n3090: 650\n", "priced twice"),
        ("", "expected a mapping"),
    ],
)
def test_a_bad_price_file_is_one_line_and_exit_2(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "prices.yaml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    proc = planner(*DONE_WHEN, "--offline", "--prices", str(path))
    assert proc.returncode == 2, (proc.stdout[-300:], proc.stderr)
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("planner: error: --prices") and message in lines[0], lines


def test_prices_without_upgrade_and_a_folder_are_refused(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("RTX 3090: 700\n", encoding="utf-8")
    proc = planner(*DONE_WHEN[:-1], "--offline", "--prices", str(tmp_path / "p.yaml"))
    assert proc.returncode == 2 and "add --upgrade" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    proc = planner(*DONE_WHEN, "--offline", "--prices", str(tmp_path))
    assert proc.returncode == 2 and "not a regular file" in proc.stderr


def test_a_usable_plan_says_there_is_nothing_to_change() -> None:
    proc = planner("plan", "llama-3.1-8b", "--gpu", "RTX 3090", "--ram", "32GB", "--upgrade", "--offline", "--json")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["upgrades"] == [] and plan["upgrade_notes"][0].startswith("nothing to change")


def test_the_readme_table_is_what_the_command_prints() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index("Upgrades (each change re-planned)\n") :].split("\n  ·")[0].splitlines()[2:]
    ups = json.loads(planner(*DONE_WHEN, "--offline", "--json").stdout)["upgrades"]
    assert len(block) == len(ups)
    for line, up in zip(block, ups):
        change, rest = line[:31].strip(), line[31:].split()
        assert up["change"].startswith(change)
        assert rest[0] == ("yes" if up["fixes"] else "no") and rest[1] == up["where"] and rest[2] == up["quant"]
        assert int(rest[3]) == up["ctx_size"] and float(rest[4]) == up["generation_tokens_per_s"]
        assert " ".join(rest[5:]) == " ".join(f"'{o}'" if " " in o else o for o in up["options"])
