"""Rich views of DeployReport and BenchReport (the same objects --json prints)."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from planner.types.deploy import BenchReport, DeployReport, StopResult, Verification


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


def _line(label: str, value: str, style: str = "") -> Text:
    """One line of the report: a bold label, then text from outside (paths, names) printed as it is."""
    return Text.assemble((label, "bold"), (value, style)) if label else Text(value, style=style)


def show_deploy(report: DeployReport, console: Any) -> None:
    from rich.panel import Panel
    from rich.table import Table

    # Every path, name, note and server message is a Text, never rich markup: "[/INST]" in a model's answer or
    # "[/]" in a path crashed the view (after the server was verified), "[wip]" silently vanished.
    m = report.model
    where = f"{m.path}" + ("" if m.present else " (not downloaded: --no-download)")
    lines = [_line("model    ", where)]
    if m.downloaded_bytes:
        resumed = f", resumed from {_gib(m.resumed_from_bytes)}" if m.resumed_from_bytes else ""
        checked = ", sha256 verified" if m.verified_sha256 else ""
        lines.append(
            _line("", f"           downloaded {_gib(m.downloaded_bytes)} of {_gib(m.size_bytes)}{resumed}{checked}")
        )
    lines.append(_line("files    ", f"{report.out_dir} ({report.target})"))
    for f in report.files:
        lines.append(_line("", f"           {f}"))
    for b in report.backups:
        lines.append(_line("", f"           kept your edited copy as {b}", "yellow"))
    if report.image:
        lines.append(_line("image    ", report.image))
    lines.append(_line("endpoint ", f"{report.endpoint}   model id: {report.alias}"))
    lines.append(_line("API key  ", f"{report.api_key_file} (mode 0600)"))
    console.print(Panel(Text("\n").join(lines), title="planner deploy", expand=False))
    for note in report.notes:
        console.print(Text.assemble(("note:", "yellow"), f" {note}"))
    if report.launch is not None:
        launch = report.launch
        who = f"pid {launch.pid}" if launch.pid else f"compose project {launch.compose_project}"
        console.print(
            _line("launched", f" with {launch.method} ({who}); log: {launch.log_file or 'docker compose logs'}")
        )
        for why in launch.why:
            console.print(Text(f"  {why}"))
        for item in launch.ignored_settings:
            console.print(Text.assemble("  ", ("ignored:", "yellow"), f" {item}"))
        if launch.verification is not None:
            show_verification(launch.verification, console)
        if launch.comparison:
            table = Table(title="measured vs plan", show_header=False)
            for line in launch.comparison:
                table.add_row(Text(line))
            console.print(table)
    console.print("\n[bold]Call it from Python[/] (pip install openai):")
    # Plain text, never cropped to the terminal width: it is meant to be copied.
    console.print(report.how_to_call, highlight=False, markup=False, soft_wrap=True)
    if report.launch and report.launch.detached:
        console.print(
            Text.assemble("Running in the background. Stop it with: ", (f"planner stop {report.out_dir}", "bold"))
        )


def show_verification(v: Verification, console: Any) -> None:
    ok = ("OK", "green") if v.ok else ("FAILED", "red")
    model = repr(v.model_id) if v.model_id else "not known"  # the model list failed before it named one
    console.print(
        Text.assemble(
            ("verification", "bold"), " ", ok, f": {v.endpoint}, model {model}, ready after {v.ready_after_s} s"
        )
    )
    if v.measured is not None:
        m = v.measured
        pp = f"{m.prompt_tokens_per_s:.1f}" if m.prompt_tokens_per_s else "-"
        tg = f"{m.generation_tokens_per_s:.1f}" if m.generation_tokens_per_s else "-"
        console.print(
            f"  prompt {m.prompt_tokens} tokens at {pp} tokens/s (first token after {m.time_to_first_token_s:.2f} s); "
            f"generated {m.completion_tokens} tokens at {tg} tokens/s; context {m.ctx_size or 'not reported'}",
            markup=False,
        )
    if v.answer:
        console.print(Text(f"  answer: {v.answer.strip()[:200]!r}"))  # the model's own words: never markup
    console.print(Text(f"  wrong API key: {_wrong_key_outcome(v)}"))
    for problem in v.problems:
        console.print(Text.assemble("  ", ("problem:", "red"), f" {problem}"))


def _wrong_key_outcome(v: Verification) -> str:
    if not v.wrong_key_checked:  # an earlier step failed, or there was no key to get wrong
        return "not checked"
    if v.wrong_key_refused:
        return "refused (401)"
    return "NOT refused (accepted)" if v.wrong_key_status is None else f"NOT refused (HTTP {v.wrong_key_status})"


def show_bench(report: BenchReport, console: Any) -> None:
    from rich.table import Table

    show_verification(report.verification, console)
    run = report.run
    if run is None:
        return
    table = Table(title=f"{run.requests} requests, {run.concurrency} concurrent streams")
    table.add_column("")
    table.add_column("p50", justify="right")
    table.add_column("p90", justify="right")
    table.add_column("p99", justify="right")
    table.add_column("mean", justify="right")
    for name, p in (("time to first token (s)", run.time_to_first_token_s), ("latency (s)", run.latency_s)):
        if p is not None:
            table.add_row(name, f"{p.p50:.3f}", f"{p.p90:.3f}", f"{p.p99:.3f}", f"{p.mean:.3f}")
    console.print(table)
    per_stream = f"{run.per_stream_generation_tokens_per_s:.1f}" if run.per_stream_generation_tokens_per_s else "-"
    console.print(
        f"throughput {run.generation_tokens_per_s:.1f} generated tokens/s in total ({per_stream} per stream); "
        f"{run.succeeded} succeeded, {run.failed} failed in {run.wall_s:.1f} s"
    )
    for err in run.errors:
        console.print(Text.assemble("  ", ("error:", "red"), f" {err}"))  # the server's words: never markup


def show_stop(result: StopResult, console: Any | None = None) -> None:
    from rich.console import Console

    (console or Console()).print(result.message, markup=False, highlight=False)
