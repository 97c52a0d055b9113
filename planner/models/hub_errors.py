"""The one table that turns huggingface_hub's and its HTTP client's errors into planner's one-line errors, used
wherever planner talks to the hub (listing, header reads, downloads), so the same failure reads the same way."""

from __future__ import annotations

from planner import config
from planner.errors import BadInput, EnvironmentProblem, HubUnreachable, PlannerError


def hub_error(exc: BaseException, repo: str, endpoint: str | None = None) -> PlannerError | None:
    """planner's error for `exc` raised while asking `endpoint` about `repo`, or None when it is none of the
    hub's (the caller re-raises it: a bug should not be disguised as a network problem)."""
    import httpx2  # huggingface_hub >= 1.0's HTTP client
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = endpoint or config.hub_endpoint()
    if isinstance(exc, GatedRepoError):  # before RepositoryNotFoundError: it is one
        if config.hub_token():
            return EnvironmentProblem(
                f"access to {repo!r} was refused for this HF_TOKEN: accept its licence on the hub with that account"
            )
        return EnvironmentProblem(
            f"access to {repo!r} was refused: it is gated; accept its licence on the hub and set HF_TOKEN "
            f"({where}/{repo})"
        )
    if isinstance(exc, RepositoryNotFoundError):
        hint = "" if config.hub_token() else " (if it is private, set HF_TOKEN)"
        return BadInput(f"no such model repo {repo!r} on {where}{hint}")
    if isinstance(exc, RevisionNotFoundError):
        return BadInput(f"{repo!r} has no such revision on {where}")
    if isinstance(exc, RemoteEntryNotFoundError):
        return BadInput(f"{repo!r} has no such file: {exc}".splitlines()[0])
    if isinstance(exc, OfflineModeIsEnabled):
        return HubUnreachable(f"HF_HUB_OFFLINE is set: not contacting {where}")
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else None
        if status in (401, 403):
            return EnvironmentProblem(f"{where} refused access to {repo!r} (HTTP {status}): check HF_TOKEN")
        if status is not None and status >= 500:
            return HubUnreachable(f"can't reach {where} (HTTP {status})")
        return EnvironmentProblem(f"{where} answered HTTP {status or '?'} for {repo!r}")
    if isinstance(exc, httpx2.TransportError | OSError | TimeoutError):
        return HubUnreachable(f"can't reach {where} (offline?): {type(exc).__name__}: {exc}".splitlines()[0])
    if isinstance(exc, httpx2.HTTPError):
        return EnvironmentProblem(f"{where}: {exc}".splitlines()[0])
    return None
