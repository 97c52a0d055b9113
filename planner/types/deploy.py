"""What deploy, bench and stop return: the options a deployment takes, the model files, the verification and
measurements of a launched server, the bench report, and the state a detached server leaves for `planner stop`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from planner.types.plan import Plan

Method = Literal["docker", "native", "embedded"]


@dataclass
class DeployOptions:
    out_dir: Path
    target: str = "compose"
    host: str = "127.0.0.1"
    port: int = 8080
    alias: str | None = None
    models_dir: Path | None = None
    download: bool = True
    fit: bool = False
    force: bool = False
    launch: bool = False
    detach: bool = False
    launch_with: str = "auto"
    ready_timeout_s: float = 600


class ModelFiles(BaseModel):
    """Where the model is (or would be) on this machine."""

    path: str  # what --model gets: the file, or the first shard of a split file
    files: list[str] = Field(default_factory=list)  # every file, in shard order
    source: str = "hub"  # "hub" | "local"
    repo: str | None = None
    revision: str | None = None
    commit: str | None = None
    size_bytes: int = 0
    downloaded_bytes: int = 0  # fetched by this run
    resumed_from_bytes: int = 0  # already on disk in .partial files when this run started
    verified_sha256: bool = False  # every file fetched by this run was hashed against the hub's LFS sha256
    present: bool = True  # False with --no-download when the files are not there yet


class Measured(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    time_to_first_token_s: float
    total_s: float
    prompt_tokens_per_s: float | None  # prompt tokens / time to first token
    generation_tokens_per_s: float | None  # (completion tokens - 1) / (last token time - first token time)
    ctx_size: int | None = None  # per-sequence context the server reports (None: it does not say)


class Verification(BaseModel):
    endpoint: str
    ready: bool = False
    ready_after_s: float | None = None
    model_id: str | None = None
    answer: str = ""
    measured: Measured | None = None
    wrong_key_checked: bool = False  # False: the check never ran (an earlier step failed, or no key was given)
    wrong_key_status: int | None = None
    wrong_key_refused: bool = False
    problems: list[str] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.ready and bool(self.answer.strip()) and self.wrong_key_refused and not self.problems


class Percentiles(BaseModel):
    p50: float
    p90: float
    p99: float
    mean: float


class RequestResult(BaseModel):
    ok: bool
    time_to_first_token_s: float | None = None
    latency_s: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None


class ConcurrencyRun(BaseModel):
    concurrency: int
    requests: int
    succeeded: int
    failed: int
    wall_s: float
    generation_tokens_per_s: float  # all completion tokens / wall time (aggregate throughput)
    per_stream_generation_tokens_per_s: float | None  # mean of each request's own decode speed
    time_to_first_token_s: Percentiles | None
    latency_s: Percentiles | None
    errors: list[str] = Field(default_factory=list)


class BenchReport(BaseModel):
    url: str
    verification: Verification
    run: ConcurrencyRun | None = None
    failure: str | None = None  # why the bench did not pass, in one line; None when it passed

    @property
    def ok(self) -> bool:
        return self.verification.ok and (self.run is None or self.run.failed == 0)


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


class DeployState(BaseModel):
    method: Method
    out_dir: str
    endpoint: str
    pid: int | None = None  # native / embedded: the server process (leader of its own process group)
    process_started: float | None = None  # its start time (psutil), so a recycled pid is never signalled
    compose_project: str | None = None
    compose_file: str | None = None
    command: list[str] = Field(default_factory=list)
    log_file: str | None = None
    started_at: float
    verified: bool | None = None  # None: written when the server started, before its verification finished


class StopResult(BaseModel):
    """`planner stop`: what was stopped, and the record it was stopped from."""

    stopped: bool
    message: str
    state: DeployState
