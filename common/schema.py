"""The event schema of events.py as pydantic models: every field's type, length
and range, and the nesting depth of the whole object. The collector checks each
received event with check_event() (a 422 naming the field otherwise); the agent
may use the same models before it spools an event."""
from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, ValidationError

from .events import SEVERITIES

MAX_INT = 2**63 - 1      # what a BIGINT column holds
MAX_DEPTH = 16           # objects/lists inside an event
MAX_STR = 64 * 1024      # any one string inside an event

Seq = Annotated[StrictInt, Field(ge=1, le=MAX_INT)]
Count = Annotated[StrictInt, Field(ge=0, le=MAX_INT)]
Short = Annotated[StrictStr, Field(max_length=64)]
Name = Annotated[StrictStr, Field(max_length=255)]
Tag = Annotated[StrictStr, Field(max_length=16)]
Seconds = Annotated[StrictInt | StrictFloat, Field(ge=0, le=1e12, allow_inf_nan=False)]


class _Open(BaseModel):
    """Known keys are typed; others are allowed (they are checked for depth and string length)."""
    model_config = ConfigDict(extra="allow", strict=True)


class Host(_Open):
    id: Optional[Short] = None
    name: Optional[Name] = None
    class_: Optional[Literal["classified", "unclassified"]] = Field(None, alias="class")


class User(_Open):
    uid: Optional[Annotated[StrictInt, Field(ge=-1, le=2**32)]] = None
    name: Optional[Name] = None
    session: Optional[Annotated[StrictStr, Field(max_length=255)] | StrictInt] = None


class Evidence(_Open):
    rule: Optional[Annotated[StrictStr, Field(max_length=255)]] = None
    level: Optional[Tag] = None
    hash: Optional[Annotated[StrictStr, Field(max_length=128)]] = None


class File(_Open):
    path: Optional[Annotated[StrictStr, Field(max_length=4096)]] = None
    size: Optional[Count] = None
    sha256: Optional[Annotated[StrictStr, Field(max_length=64)]] = None
    type: Optional[Annotated[StrictStr, Field(max_length=255)]] = None
    level: Optional[Tag] = None
    evidence: Optional[Annotated[list[Evidence], Field(max_length=1000)]] = None


class Medium(_Open):
    level: Optional[Tag] = None


class Session(_Open):
    id: Optional[Annotated[StrictStr, Field(max_length=255)] | StrictInt] = None
    idle_s: Optional[Seconds] = None


class Process(_Open):
    pid: Optional[Annotated[StrictInt, Field(ge=0, le=2**32)]] = None
    exe: Optional[Annotated[StrictStr, Field(max_length=4096)]] = None
    comm: Optional[Annotated[StrictStr, Field(max_length=255)]] = None


class HeartbeatDetails(_Open):  # the collector keeps the first 64 characters of the versions
    version: Optional[Annotated[StrictStr, Field(max_length=4096)]] = None
    policy_version: Optional[Annotated[StrictStr, Field(max_length=4096)]] = None  # holds agent.toml's path
    spool_depth: Optional[Count] = None
    oldest_unsent_age_s: Optional[Seconds] = None


class GapDetails(_Open):
    first_seq: Seq
    last_seq: Seq
    count: Optional[Count] = None


class Event(BaseModel):
    """One stored event exactly as events.FIELDS lists them, no more."""
    model_config = ConfigDict(extra="forbid", strict=True)
    id: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    seq: Seq
    time: Annotated[StrictStr, Field(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")]
    agent_id: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    host: Optional[Host]
    user: Optional[User]
    kind: Annotated[StrictStr, Field(max_length=64, pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$")]
    severity: Literal[SEVERITIES]  # type: ignore[valid-type]
    medium: Optional[Medium]
    file: Optional[File]
    session: Optional[Session]
    process: Optional[Process]
    action: Optional[Annotated[StrictStr, Field(max_length=16, pattern=r"^[a-z_]+$")]]
    rule: Optional[Annotated[StrictStr, Field(max_length=255)]]
    details: dict[str, Any]
    prev_hash: Annotated[StrictStr, Field(max_length=64)]
    hash: Annotated[StrictStr, Field(max_length=64)]


DETAILS_BY_KIND: dict[str, type[BaseModel]] = {"agent.heartbeat": HeartbeatDetails, "agent.gap": GapDetails}


def depth_problem(value: Any, max_depth: int = MAX_DEPTH, max_str: int = MAX_STR) -> str | None:
    """Where value nests deeper than max_depth or holds a string longer than max_str (iterative)."""
    stack: list[tuple[Any, int, str]] = [(value, 0, "")]
    while stack:
        v, d, where = stack.pop()
        if isinstance(v, dict):
            if d >= max_depth:
                return f"{where or 'event'}: nested deeper than {max_depth} levels"
            for k, item in v.items():
                if len(k) > 255:
                    return f"{where or 'event'}: a key is longer than 255 characters"
                stack.append((item, d + 1, f"{where}.{k}" if where else k))
        elif isinstance(v, list):
            if d >= max_depth:
                return f"{where or 'event'}: nested deeper than {max_depth} levels"
            stack.extend((item, d + 1, f"{where}[{i}]") for i, item in enumerate(v))
        elif isinstance(v, str):
            if len(v) > max_str:
                return f"{where}: longer than {max_str} characters"
        elif isinstance(v, float) and not math.isfinite(v):
            return f"{where}: not a finite number"
        elif isinstance(v, int) and not isinstance(v, bool) and not -MAX_INT - 1 <= v <= MAX_INT:
            return f"{where}: integer out of range"
    return None


def _first_error(exc: ValidationError, prefix: str = "") -> str:
    err = exc.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function"))))
    loc = loc.replace("class_", "class")
    return f"{prefix}{loc or 'event'}: {err['msg']}"


def check_event(event: Any) -> str | None:
    """None when event fits the schema, else a message that names the field."""
    if not isinstance(event, dict):
        return "event is not a JSON object"
    problem = depth_problem(event)
    if problem:
        return problem
    try:
        Event.model_validate(event)
        model = DETAILS_BY_KIND.get(event["kind"])
        if model is not None:
            details = model.model_validate(event["details"])
            if isinstance(details, GapDetails) and details.first_seq > details.last_seq:
                return "details.first_seq: greater than details.last_seq"
    except ValidationError as exc:
        prefix = "details." if "details" in event and isinstance(event.get("kind"), str) \
            and event["kind"] in DETAILS_BY_KIND and _details_failed(exc) else ""
        return _first_error(exc, prefix)
    return None


def _details_failed(exc: ValidationError) -> bool:
    return exc.title in {m.__name__ for m in DETAILS_BY_KIND.values()}


class EnrollHost(_Open):
    name: Optional[Name] = None
    class_: Optional[Annotated[StrictStr, Field(max_length=32)]] = Field(None, alias="class")


class Enrollment(BaseModel):
    """The body of POST /api/v1/enroll: only types and lengths here; meaning is enroll()'s."""
    model_config = ConfigDict(extra="allow", strict=True)
    token: Optional[Annotated[StrictStr, Field(max_length=256)]] = None
    public_key: Optional[Annotated[StrictStr, Field(max_length=128)]] = None
    agent_id: Optional[Annotated[StrictStr, Field(max_length=64)]] = None
    host: Optional[EnrollHost] = None
    version: Optional[Short] = None


class BatchEnvelope(BaseModel):
    """The body of POST /api/v1/events around its events (each checked by check_event)."""
    model_config = ConfigDict(extra="allow", strict=True)
    agent_id: Annotated[StrictStr, Field(max_length=64)]
    batch: Seq
    sent_at: Optional[Annotated[StrictStr, Field(max_length=64)]] = None
    events: Annotated[list[Any], Field(max_length=100_000)]


def loads(raw: bytes | str) -> Any:
    """json.loads that turns nesting too deep for the parser into a ValueError (not a RecursionError)."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def check_model(model: type[BaseModel], body: Any, max_depth: int = MAX_DEPTH + 2) -> str | None:
    problem = depth_problem(body, max_depth)
    if problem:
        return problem
    try:
        model.model_validate(body)
    except ValidationError as exc:
        return _first_error(exc)
    return None
