"""MLflow model registry: register challengers, promote champions, keep a readable history.

Aliases are the state: `challenger` is the newest complete model, `champion` the one in
service (load it as `models:/<name>@champion`). Every alias move or refusal is stored as
a tag `oanet.event.<UTC time>` on the model version it concerns, so the registry itself
is the audit log: no side file to lose, and `history` rebuilds it from the tags.

The client is always passed in: nothing here sets a tracking URI or touches the network.
The decision itself is the pure `oanet.promotion.decide`.

Safe to run twice at once and safe to retry: every `champion` move happens under a file
lock, after re-reading the holder (compare-and-set: `expected_champion`); a version records
the sha256 of its bundle, so a retried register finds the version it already made instead
of making a second one, and an offer that is already recorded is not recorded again.
"""
from __future__ import annotations

import json
import re
import tempfile
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from oanet.errors import OanetError
from oanet.jsonsafe import strict_json
from oanet.promotion import METRICS, OPTIONAL, Candidate, Decision, Floors, PromotionRule, decide, incomplete_reason

TAG_PREFIX = "oanet."
EVENT_PREFIX = TAG_PREFIX + "event."
COMPLETE_TAG = TAG_PREFIX + "complete"
BUNDLE_TAG = TAG_PREFIX + "bundle_sha256"
CHAMPION, CHALLENGER = "champion", "challenger"
# MLflow 3.17 accepts 100,000 characters per model-version tag value, but older servers
# and Databricks stop at 5,000; staying under that keeps the history portable.
MAX_EVENT_CHARS = 5000


class RollbackError(OanetError):
    """Champion cannot be rolled back (no champion, no earlier holder, or moved by hand)."""


class ChampionMoved(OanetError):
    """`champion` changed between scoring against it and moving it: compare again."""


LOCK_SECONDS = 600     # a register holds the lock for a few registry calls; this long means a stuck one


@contextmanager
def alias_lock(name: str, folder: str | Path | None = None):
    """Hold the lock that serialises alias moves of model `name` (processes on this host,
    or on every host when `folder` is shared)."""
    from filelock import FileLock

    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    path = Path(folder or tempfile.gettempdir()) / f"oanet-registry-{safe}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path), timeout=LOCK_SECONDS):
        yield


# ---------------------------------------------------------------- registering

def register_challenger(client, name: str, source_uri: str, run_id: str, metrics: dict | None,
                        complete: bool, bundle_sha256: str | None = None, lock_dir: str | Path | None = None) -> str:
    """New version of `name` from `source_uri`, tagged with its metrics; returns the version.

    A complete run with all metrics takes the `challenger` alias; anything else is recorded
    as refused and moves no alias, so a crashed training run can never reach service.
    `bundle_sha256` lets a retry find this version (`registered_bundle`).
    """
    _ensure_registered_model(client, name)
    source, model_id = _resolve_source(client, source_uri)
    metrics = metrics or {}
    tags = {TAG_PREFIX + k: repr(float(metrics[k])) for k in METRICS + OPTIONAL if metrics.get(k) is not None}
    tags[COMPLETE_TAG] = "true" if complete else "false"
    if bundle_sha256:
        tags[BUNDLE_TAG] = bundle_sha256
    mv = client.create_model_version(name, source, run_id=run_id, tags=tags, model_id=model_id)
    version = str(mv.version)   # the SQLite store returns an int despite the str annotation
    offer_challenger(client, name, version, lock_dir)
    return version


def offer_challenger(client, name: str, version: str, lock_dir: str | Path | None = None) -> None:
    """Give `version` the `challenger` alias, or record why not; once per version (a retry is a no-op)."""
    version = str(version)
    with alias_lock(name, lock_dir):
        tags = client.get_model_version(name, version).tags
        if _events(tags, CHALLENGER):
            return
        previous = alias_holder(client, name, CHALLENGER)
        why = incomplete_reason(_candidate(version, tags))
        if why:
            _record(client, name, version, "refuse", CHALLENGER, previous, previous,
                    f"not a challenger: v{version} {why}")
        else:
            client.set_registered_model_alias(name, CHALLENGER, version)
            _record(client, name, version, "challenger", CHALLENGER, previous, version,
                    f"v{version} is the new challenger")


def registered_bundle(client, name: str, bundle_sha256: str) -> str | None:
    """The newest version of `name` when it holds this very bundle, else None.

    That is a register that died after registering (or a retry of one): reuse its version.
    Only the newest counts: registering the same bundle again after others is a new offer.
    """
    newest = client.search_model_versions(f"name = '{name}'", max_results=1, order_by=["version_number DESC"])
    if newest and (newest[0].tags or {}).get(BUNDLE_TAG) == bundle_sha256:
        return str(newest[0].version)
    return None


def recorded_decision(client, name: str, version: str) -> Decision | None:
    """The `champion` decision already recorded on `version` (a retried register), else None."""
    events = _events(client.get_model_version(name, str(version)).tags, CHAMPION)
    if not events:
        return None
    last = events[-1]
    return Decision(last["action"] == "promote", last["reason"], last.get("compared") or {})


def _ensure_registered_model(client, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise


def _resolve_source(client, source_uri: str) -> tuple[str, str | None]:
    """(storage location, logged-model id) for `source_uri`.

    MLflow 3 stores a logged model under `<experiment>/models/<model_id>/artifacts`, not
    under the run, so a version created from `runs:/<run>/model` as is points at an empty
    folder and `models:/<name>@champion` fails to load. `mlflow.register_model` resolves
    this, but through the global tracking URI; this does the same with the given client.
    """
    from mlflow.store.artifact.runs_artifact_repo import RunsArtifactRepository

    if source_uri.startswith("models:/m-"):         # a logged model's own URI
        model = client.get_logged_model(source_uri.removeprefix("models:/").split("/")[0])
        return model.artifact_location, model.model_id
    if not RunsArtifactRepository.is_runs_uri(source_uri):
        return source_uri, None
    run_id, path = RunsArtifactRepository.parse_runs_uri(source_uri)
    run = client.get_run(run_id)
    found = [m for m in client.search_logged_models(experiment_ids=[run.info.experiment_id],
                                                    filter_string=f"name = '{path}'")
             if m.source_run_id == run_id]
    if not found:                                   # an MLflow 2 style model inside the run
        return RunsArtifactRepository.get_underlying_uri(source_uri), None
    newest = max(found, key=lambda m: m.creation_timestamp)
    return newest.artifact_location, newest.model_id


# ---------------------------------------------------------------- promoting

_ANY = object()      # apply_promotion without compare-and-set


def apply_promotion(client, name: str, version: str, rule: PromotionRule,
                    champion_metrics: dict | None = None, challenger_metrics: dict | None = None,
                    floors: Floors = Floors(), note: str = "", expected_champion=_ANY,
                    lock_dir: str | Path | None = None, drifted: str = "") -> Decision:
    """Compare `version` with the current champion, move `champion` if it wins, record either way.

    `champion_metrics` / `challenger_metrics` ({recall, accuracy, robust_recall}): both
    models re-scored on the same rows; None uses the metrics each was registered with.
    `expected_champion`: the version those were scored against (None: no champion); if
    another register moved `champion` since, nothing moves and ChampionMoved is raised.
    `note` (e.g. why the champion could not be re-scored) is kept in the event's reason.
    `drifted`: the drift alert of the challenger's test rows (oanet.promotion.decide), "" if none.
    """
    version = str(version)
    with alias_lock(name, lock_dir):      # read, compare and move as one step
        holder = alias_holder(client, name, CHAMPION)
        if expected_champion is not _ANY and holder != expected_champion:
            raise ChampionMoved(f"{CHAMPION} of {name!r} moved from v{expected_champion} to v{holder} "
                                "while this register was comparing")
        if holder == version:
            return Decision(True, f"v{version} already holds {CHAMPION}; nothing to do",
                            {"challenger": None, "champion": None, "rule": None})
        challenger = _candidate(version, client.get_model_version(name, version).tags)
        champion = None if holder is None else _candidate(holder, client.get_model_version(name, holder).tags)
        if champion is not None and champion_metrics and challenger_metrics:
            champion, challenger = _rescored(champion, champion_metrics), _rescored(challenger, challenger_metrics)

        decision = decide(challenger, champion, rule, floors, drifted)
        reason = f"{decision.reason} ({note})" if note else decision.reason
        if decision.promote:
            client.set_registered_model_alias(name, CHAMPION, version)
            _record(client, name, version, "promote", CHAMPION, holder, version, reason, decision.compared)
        else:
            _record(client, name, version, "refuse", CHAMPION, holder, holder, reason, decision.compared)
        return Decision(decision.promote, reason, decision.compared)


def rollback(client, name: str, lock_dir: str | Path | None = None) -> dict:
    """Move `champion` back to the version that held it before the current holder."""
    with alias_lock(name, lock_dir):
        return _rollback(client, name)


def _rollback(client, name: str) -> dict:
    holder = alias_holder(client, name, CHAMPION)
    if holder is None:
        raise RollbackError(f"model {name!r} has no {CHAMPION} to roll back")
    stack = _champion_stack(history(client, name))
    if not stack or stack[-1] != holder:
        raise RollbackError(f"{CHAMPION} of {name!r} is v{holder} but its history ends at "
                            f"v{stack[-1] if stack else '-'}: the alias was moved outside oanet; "
                            f"set it by hand with MlflowClient.set_registered_model_alias")
    if len(stack) < 2:
        raise RollbackError(f"v{holder} is the first {CHAMPION} of {name!r}: no earlier version to roll back to")
    target = stack[-2]
    client.set_registered_model_alias(name, CHAMPION, target)
    return _record(client, name, target, "rollback", CHAMPION, holder, target,
                   f"{CHAMPION} rolled back from v{holder} to v{target}")


def _champion_stack(rows: list[dict]) -> list[str]:
    """Replay promotions (push) and rollbacks (pop): the champions in the order they took over.

    A stack rather than "the event's from_version", so that two rollbacks in a row walk
    back two promotions instead of bouncing between the last two holders.
    """
    stack: list[str] = []
    for row in rows:
        if row["alias"] != CHAMPION:
            continue
        if row["action"] == "promote":
            stack.append(row["to_version"])
        elif row["action"] == "rollback":
            if stack:
                stack.pop()
            if not stack or stack[-1] != row["to_version"]:
                stack.append(row["to_version"])
    return stack


# ---------------------------------------------------------------- history

def history(client, name: str) -> list[dict]:
    """Every event of every version of `name`, oldest first."""
    rows, token = [], None
    while True:
        page = client.search_model_versions(f"name = '{name}'", page_token=token)
        for mv in page:
            for key, value in (mv.tags or {}).items():
                if key.startswith(EVENT_PREFIX):
                    rows.append({"version": str(mv.version), "key": key, **json.loads(value)})
        token = page.token
        if not token:
            break
    return sorted(rows, key=lambda r: (r["time"], r["key"], int(r["version"])))


def format_history(rows: list[dict]) -> str:
    """A plain-text table for a terminal: time, version, action, alias move, reason."""
    def move(r):
        old, new = r.get("from_version"), r.get("to_version")
        if r["action"] == "refuse":
            return f"{r['alias']} stays {'v' + old if old else '(none)'}"
        return f"{r['alias']} {'v' + old if old else '(none)'} -> v{new}"

    table = [("time (UTC)", "version", "action", "alias", "reason")]
    table += [(r["time"], "v" + r["version"], r["action"], move(r), r["reason"]) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)) + "  " + row[4] for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * len("reason"))
    return "\n".join(lines) if rows else "\n".join(lines[:2] + ["(no events)"])


# ---------------------------------------------------------------- helpers

def alias_holder(client, name: str, alias: str) -> str | None:
    # get_model_version_by_alias raises INVALID_PARAMETER_VALUE for a missing alias (not
    # RESOURCE_DOES_NOT_EXIST), indistinguishable from a bad name; the aliases dict is not.
    version = client.get_registered_model(name).aliases.get(alias)
    return None if version is None else str(version)


def _events(tags: dict | None, alias: str) -> list[dict]:
    """The events about `alias` stored on one version's tags, oldest first."""
    rows = [json.loads(v) for k, v in sorted((tags or {}).items()) if k.startswith(EVENT_PREFIX)]
    return [r for r in rows if r.get("alias") == alias]


def _rescored(candidate: Candidate, metrics: dict) -> Candidate:
    """The candidate with its registered metrics replaced by `metrics` (a metric it lacks stays unset)."""
    return Candidate(candidate.version, candidate.complete,
                     **{k: float(metrics[k]) for k in METRICS + OPTIONAL if k in metrics})


def _candidate(version: str, tags: dict) -> Candidate:
    def number(key):
        text = tags.get(TAG_PREFIX + key)
        return None if text is None else float(text)

    return Candidate(version=str(version), complete=tags.get(COMPLETE_TAG) == "true",
                     recall=number("recall"), accuracy=number("accuracy"),
                     robust_recall=number("robust_recall"), robust_accuracy=number("robust_accuracy"))


_last_time = datetime.min.replace(tzinfo=UTC)


def _event_time() -> datetime:
    """UTC now, strictly increasing within this process: events are keyed and sorted by it."""
    global _last_time
    now = datetime.now(UTC)
    _last_time = now if now > _last_time else _last_time + timedelta(microseconds=1)
    return _last_time


def _record(client, name, version, action, alias, from_version, to_version, reason, compared=None) -> dict:
    """Store one event as a tag on `version` and return it."""
    when = _event_time()
    event = {"time": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "action": action, "alias": alias,
             "from_version": from_version, "to_version": to_version, "reason": reason,
             "compared": strict_json(compared)}     # the event must be strict JSON
    text = json.dumps(event, separators=(",", ":"))
    if len(text) > MAX_EVENT_CHARS:          # the numbers are also on the version's tags
        event["compared"] = None
        event["reason"] = reason[:MAX_EVENT_CHARS // 2]
        text = json.dumps(event, separators=(",", ":"))
    # No colons in the key: MLflow rejects them in tag names on Windows.
    key = EVENT_PREFIX + when.strftime("%Y%m%dT%H%M%S.%fZ")
    client.set_model_version_tag(name, version, key, text)
    return {"version": str(version), "key": key, **event}
