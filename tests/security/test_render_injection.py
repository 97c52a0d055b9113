"""The injection corpus, extended: hostile characters in every path and name that reaches a rendered file.

Control and line-separator characters are refused (one BadInput, exit 2) before anything is downloaded or
written. Every other character renders into files that still mean exactly what planner meant: compose validates
against the compose-spec schema, the k8s manifests hold only their three objects, command.sh is three lines and
runs the planned argv, and the systemd unit holds only its settings, read by systemd's own rules (and, where
`systemd-analyze` exists, verified by it without a warning).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from importlib.resources import files as package_files
from pathlib import Path

import pytest
import yaml
from localhub import LocalHub, local_hub, use_hub  # noqa: F401 - the fixture

from planner.errors import BadInput
from planner.rendering.artifacts import Rendered
from planner.serving.artifacts import render_artifacts
from planner.types.plan import Plan

from deploy.conftest import TESLA_P4, make_plan  # isort: skip - tests/deploy's plan builder

ROOT = Path(__file__).resolve().parent.parent.parent
TARGETS = ("compose", "command", "systemd", "k8s")

# Refused everywhere: the shell ends a line at \n, systemd at \r too, YAML 1.1 also at \x85, U+2028, U+2029.
CONTROL = {
    "LF": "\n",
    "CR": "\r",
    "TAB": "\t",
    "NUL": "\x00",
    "ESC": "\x1b",
    "DEL": "\x7f",
    "NEL": "\x85",
    "LS": "\u2028",
    "PS": "\u2029",
}
# Accepted: each special to some target (shell, YAML, systemd specifiers and quoting, rich markup, jinja).
ODD = {
    "space": "my models",
    "quote": "it's",
    "dquote": 'say "hi"',
    "percent": "100% %h %i",
    "dollar": "$HOME ${X} $$",
    "semicolon": "a;b ; c",
    "backslash": "back\\slash \\n",
    "trailing-backslash": "ends\\",
    "hash": "#not a comment",
    "yaml": "key: value - [x] {y} &a *b !t |",
    "markup": "[wip] [bold]",
    "jinja": "{{ x }} {% y %}",
    "shell": "`id` $(id) * ? ~ < > && ||",
    "dash": "-rf --help",
    "unicode": "é ü 模型 😀",
    "nbsp": "nbsp\u00a0and\u200bzero-width",
}


def render(plan: Plan, out: Path, model: Path | str, target: str, binary: str = "/usr/bin/true") -> Rendered:
    return render_artifacts(plan, model_files=[str(model)], out_dir=out, target=target, server_binary=binary)


@pytest.fixture(scope="module")
def argv_dump(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real program for command.sh and the unit to run: it prints its arguments, NUL-separated."""
    path = tmp_path_factory.mktemp("bin") / "argv-dump"
    path.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\0" "$a"; done\n')
    path.chmod(0o755)
    return str(path)


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real (generated, 1.3 MB) GGUF: rendering never reads the weights, and a copy of it is a regular file, so
    the model's own folder (not a link's target) is the one the unit makes read-only."""
    from ggufgen import write_model

    return write_model(tmp_path_factory.mktemp("gguf") / "tiny.gguf", zeros=True)


def model_in(folder: Path, file_name: str, source: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / file_name
    shutil.copyfile(source, model)
    return model


# --- refused: control characters --------------------------------------------------------------------------------


def _position_paths(tmp_path: Path, char: str, position: str, source: Path) -> tuple[Path | str, Path]:
    """(model, out) with `char` in the model's folder, its file name, or the output folder."""
    real_fs = char != "\x00"  # no file system takes a NUL: the path is refused as a string
    if position == "folder":
        folder = tmp_path / f"models{char}dir"
        model = model_in(folder, "m.gguf", source) if real_fs else folder / "m.gguf"
        return model, tmp_path / "out"
    if position == "file":
        model = model_in(tmp_path, f"m{char}odel.gguf", source) if real_fs else tmp_path / f"m{char}.gguf"
        return model, tmp_path / "out"
    return model_in(tmp_path, "m.gguf", source), tmp_path / f"out{char}dir"


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("position", ["folder", "file", "out"])
@pytest.mark.parametrize("char_name", CONTROL)
def test_a_control_character_in_a_path_is_refused_before_anything_is_written(
    tiny_gguf: Path, tmp_path: Path, char_name: str, position: str, target: str
):
    char = CONTROL[char_name]
    model, out = _position_paths(tmp_path, char, position, tiny_gguf)
    before = sorted(p.name for p in tmp_path.iterdir())
    code = f"U\\+{ord(char):04X}"
    with pytest.raises(BadInput, match=rf"contains a control character \({code}\)") as err:
        render(make_plan(Path(model) if Path(model).exists() else tiny_gguf, [TESLA_P4]), out, model, target)
    assert "\n" not in err.value.message and "\r" not in err.value.message  # one line, the character spelled out
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no output folder, no file


@pytest.mark.parametrize("char_name", CONTROL)
def test_a_control_character_in_the_hub_file_name_is_refused_before_the_download(
    local_hub: LocalHub,  # noqa: F811
    tiny_gguf: Path,
    tmp_path: Path,
    char_name: str,
):
    from planner.serving.pipeline import deploy
    from planner.types.deploy import DeployOptions

    repo, name = "bartowski/SmolLM2-135M-Instruct-GGUF", f"SmolLM2{CONTROL[char_name]}Q4_1.gguf"
    local_hub.add_file(repo, name, tiny_gguf)
    plan = make_plan(tiny_gguf, [TESLA_P4], repo=repo)
    plan.model = plan.model.model_copy(update={"file": name, "files": [name]})
    with pytest.raises(BadInput, match="control character"):
        deploy(plan, DeployOptions(out_dir=tmp_path / "out", target="k8s"))
    assert local_hub.bytes_served() == 0 and not (tmp_path / "out").exists()


@pytest.mark.parametrize("char_name", ["LF", "CR", "LS", "NUL"])
def test_a_control_character_in_the_models_dir_or_the_cache_is_refused_before_the_download(
    monkeypatch: pytest.MonkeyPatch,
    local_hub: LocalHub,  # noqa: F811
    tiny_gguf: Path,
    tmp_path: Path,
    char_name: str,
):
    from planner.serving.pipeline import deploy
    from planner.types.deploy import DeployOptions

    repo, name = "bartowski/SmolLM2-135M-Instruct-GGUF", "SmolLM2-135M-Instruct-Q4_1.gguf"
    local_hub.add_file(repo, name, tiny_gguf)
    plan = make_plan(tiny_gguf, [TESLA_P4], repo=repo)
    plan.model = plan.model.model_copy(update={"file": name, "files": [name]})
    models_dir = tmp_path / f"models{CONTROL[char_name]}dir"
    with pytest.raises(BadInput, match="--models-dir.*control character"):
        deploy(plan, DeployOptions(out_dir=tmp_path / "out", models_dir=models_dir))
    if char_name == "NUL":
        return
    use_hub(monkeypatch, local_hub, tmp_path / f"hf{CONTROL[char_name]}home")  # HF_HOME holds the character
    with pytest.raises(BadInput, match="Hugging Face cache folder.*control character"):
        deploy(plan, DeployOptions(out_dir=tmp_path / "out"))
    assert local_hub.bytes_served() == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def planner_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "120", "PYTHONPATH": str(ROOT)}
    env.pop("PLANNER_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "planner", *args], capture_output=True, text=True, env=env, timeout=120, cwd=ROOT
    )


@pytest.mark.parametrize(("position", "char_name"), [("folder", "LF"), ("file", "CR"), ("out", "LS")])
def test_the_cli_says_it_in_one_line_with_exit_2(tiny_gguf: Path, tmp_path: Path, position: str, char_name: str):
    model, out = _position_paths(tmp_path, CONTROL[char_name], position, tiny_gguf)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    proc = planner_cli("deploy", str(model), "--gpu", "Tesla P4", "--out", str(out), "--target", "systemd")
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith("planner: error: ") and f"U+{ord(CONTROL[char_name]):04X}" in line, line
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


# --- accepted: everything else, rendered so that it means what planner meant --------------------------------------


@pytest.fixture(params=list(ODD), scope="module")
def odd_case(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tiny_gguf: Path, argv_dump: str
) -> dict:
    """A model in a folder named after the odd name, in a file named after it, rendered into a folder named after
    it, for every target (rendered once per name; the tests below read the files)."""
    odd = ODD[request.param]
    base = tmp_path_factory.mktemp("odd")
    model = model_in(base / f"dir {odd}", f"{odd}.gguf", tiny_gguf)
    plan = make_plan(model, [TESLA_P4])
    rendered = {target: render(plan, base / f"out {odd} {target}", model, target, argv_dump) for target in TARGETS}
    return {"odd": odd, "model": model, "plan": plan, "rendered": rendered}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, tiny_gguf: Path, argv_dump: str) -> dict[str, str]:
    """Each target rendered for a plain name in a plain folder: the shape every odd render must keep."""
    base = tmp_path_factory.mktemp("plain")
    model = model_in(base / "plain", "plain.gguf", tiny_gguf)
    texts = {}
    for target in TARGETS:
        out = Path(render(make_plan(model, [TESLA_P4]), base / target, model, target, argv_dump).out_dir)
        name = {"compose": "compose.yml", "k8s": "k8s.yaml", "command": "command.sh"}.get(target)
        texts[target] = (out / name if name else next(out.glob("*.service"))).read_text()
    return texts


def compose_errors(doc: dict) -> list[str]:
    from jsonschema.validators import validator_for

    schema = json.loads((package_files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json").read_text())
    return [f"{list(e.path)}: {e.message}" for e in validator_for(schema)(schema).iter_errors(doc)]


def test_compose_validates_and_mounts_exactly_the_model(odd_case: dict, reference: dict[str, str]):
    rendered = odd_case["rendered"]["compose"]
    text = (Path(rendered.out_dir) / "compose.yml").read_text()
    doc = yaml.safe_load(text)
    assert compose_errors(doc) == []
    assert set(doc) == {"name", "services", "volumes"}
    (service,) = doc["services"].values()
    (mount,) = [v for v in service["volumes"] if v["type"] == "bind"]
    assert mount["source"] == str(odd_case["model"].resolve())
    assert mount["target"] == f"/models/{odd_case['odd']}.gguf"
    assert service["command"][service["command"].index("--model") + 1] == mount["target"]
    assert _comment_lines(text) == _comment_lines(reference["compose"])  # the names added no line


def test_k8s_holds_exactly_its_three_objects(odd_case: dict, reference: dict[str, str]):
    out = Path(odd_case["rendered"]["k8s"].out_dir)
    text = (out / "k8s.yaml").read_text()
    docs = [d for d in yaml.safe_load_all(text) if d]
    assert [d["kind"] for d in docs] == ["PersistentVolumeClaim", "Deployment", "Service"]
    for doc in docs:
        assert set(doc) == {"apiVersion", "kind", "metadata", "spec"}
    secrets = [d for d in yaml.safe_load_all((out / "k8s-secret.yaml").read_text()) if d]
    assert [set(d) for d in secrets] == [{"apiVersion", "kind", "metadata", "type", "stringData"}]
    (server,) = docs[1]["spec"]["template"]["spec"]["containers"]
    assert server["args"][server["args"].index("--model") + 1] == f"/models/{odd_case['odd']}.gguf"
    assert _comment_lines(text) == _comment_lines(reference["k8s"])
    # The copy hint in the comment is a shell command that names the model's real path as one word; a path with
    # invisible characters (NBSP, zero-width space) has them spelled out, as every comment does.
    hint = next(line for line in text.splitlines() if "kubectl cp" in line)
    source = str(odd_case["model"].resolve())
    assert hint.isprintable()
    if source.isprintable():
        assert shlex.split(hint.split("kubectl cp", 1)[1])[0] == source
    else:
        assert "\\u00a0" in hint and "\\u200b" in hint


def test_command_sh_is_three_lines_and_runs_the_planned_argv(odd_case: dict):
    rendered = odd_case["rendered"]["command"]
    script = Path(rendered.out_dir) / "command.sh"
    lines = script.read_text().split("\n")
    assert len(lines) == 4 and lines[3] == ""  # three lines and the final newline
    assert lines[0] == "#!/bin/sh"
    assert lines[1].startswith("# Rendered by planner for ") and lines[1].endswith("; `planner deploy` rewrites it.")
    assert shlex.split(lines[2]) == ["exec", *rendered.command]
    # The real shell runs it: the program gets exactly the planned words, the model path as one of them.
    done = subprocess.run([str(script)], capture_output=True, timeout=30, check=True)
    argv = done.stdout.decode().split("\0")[:-1]
    assert argv == rendered.command[1:]
    assert argv[argv.index("--model") + 1] == str(odd_case["model"])
    assert stat.S_IMODE(script.stat().st_mode) == 0o755


def test_systemd_unit_holds_only_its_settings_by_systemds_rules(
    odd_case: dict, reference: dict[str, str], tmp_path: Path
):
    rendered = odd_case["rendered"]["systemd"]
    out = Path(rendered.out_dir)
    (unit,) = out.glob("*.service")
    sections = parse_unit(unit.read_text())
    expected = parse_unit(reference["systemd"])
    # The same sections, the same keys, each as often: no name added a setting or swallowed one.
    assert _key_counts(sections) == _key_counts(expected)
    service = sections["Service"]
    assert exec_words(service["ExecStart"][0]) == rendered.command
    assert [raw_value(v) for v in service["EnvironmentFile"]] == [str(out / ".env")]
    paths = [word for value in service["ReadOnlyPaths"] for word in path_words(value)]
    assert sorted(paths) == sorted({str(odd_case["model"].resolve().parent), str(out)})
    quant = odd_case["plan"].model.quant  # what the solver read from the real header
    assert raw_value(sections["Unit"]["Description"][0]).startswith(f"llama-server: {odd_case['model'].name} {quant} ")
    if shutil.which("systemd-analyze"):
        # Verified where it will be installed from, a plain folder: systemd-analyze adds the unit's folder to a
        # ":"-separated search path, which a folder named "key: value" breaks (the unit is not at fault).
        installed = tmp_path / unit.name
        shutil.copyfile(unit, installed)
        done = subprocess.run(["systemd-analyze", "verify", str(installed)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert unit.name not in done.stderr, done.stderr  # no "ignoring" warning about any line of the unit


# --- the reference renders and systemd's rules ----------------------------------------------------------------


def _key_counts(sections: dict[str, dict[str, list[str]]]) -> dict[str, dict[str, int]]:
    return {name: {key: len(values) for key, values in keys.items()} for name, keys in sections.items()}


def _comment_lines(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.lstrip().startswith("#"))


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """A unit file as systemd reads it (conf-parser.c): a line ends at \\n, \\r or NUL; lines are stripped;
    # and ; start comments; a trailing backslash joins the next line; [Section]; KEY=VALUE, split at the first =."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    pending = ""
    for raw in re.split(r"\r\n|\r|\n|\x00", text):
        line = raw.strip(" \t\n\r")
        if not pending and (not line or line[0] in "#;"):
            continue
        if pending and line[:1] in ("#", ";"):
            continue  # a comment inside a continued line is skipped
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line.startswith("["):
            assert line.endswith("]"), line
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None and "=" in line, line
        key, value = line.split("=", 1)
        current.setdefault(key.strip(), []).append(value.strip())
    assert not pending
    return sections


def _specifiers(text: str, *, dollars: bool) -> str:
    """%% is a %, $$ a $ (ExecStart= only); any other specifier or variable is planner's mistake."""
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch in "%$" and (ch == "%" or dollars):
            assert text[i + 1 : i + 2] == ch, f"unescaped {ch} in {text!r}"
            out.append(ch)
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _split_words(value: str, *, c_escapes: bool) -> list[str]:
    """extract_first_word(): words split on whitespace; "..." and '...' quote; a backslash escapes the next
    character (with EXTRACT_CUNESCAPE, as in ExecStart=, C escapes such as \\n are decoded instead)."""
    words: list[str] = []
    word: list[str] | None = None
    quote = ""
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            nxt = value[i + 1]
            decoded = {"n": "\n", "t": "\t", "r": "\r"}.get(nxt, nxt) if c_escapes else nxt
            word = (word or []) + [decoded]
            i += 2
            continue
        if quote:
            if ch == quote:
                quote = ""
            else:
                word = (word or []) + [ch]
        elif ch in "\"'":
            quote, word = ch, word or []
        elif ch in " \t":
            if word is not None:
                words.append("".join(word))
            word = None
        else:
            word = (word or []) + [ch]
        i += 1
    assert not quote, f"unterminated quote in {value!r}"
    if word is not None:
        words.append("".join(word))
    return words


def exec_words(value: str) -> list[str]:
    return [_specifiers(w, dollars=True) for w in _split_words(value, c_escapes=True)]


def path_words(value: str) -> list[str]:
    return [_specifiers(w, dollars=False) for w in _split_words(value, c_escapes=False)]


def raw_value(value: str) -> str:
    return _specifiers(value, dollars=False)
