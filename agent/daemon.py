"""`baomi-agent run`: start every component, keep running until SIGTERM/SIGINT
(recording who sent it: stop_origin.py).

Components are plug-ins named in COMPONENTS ("module:Class"). Each is built
with the AgentContext and has start() (returns quickly, spawning its own
threads) and stop(). A component that cannot start (logind absent, no udev)
is reported as an event and a warning; the rest of the agent keeps running.
"""
from __future__ import annotations

import importlib
import logging
import signal
import threading
from typing import Any, Protocol

from . import __version__, stop_origin
from .config import AgentConfig
from .context import AgentContext, open_context

log = logging.getLogger("baomi.agent")

COMPONENTS: list[str] = [
    # order matters: enforcement subscribes to the mounts that media publishes, and must
    # do so before media's first enumeration (a medium already mounted at start)
    "baomi.agent.enforce.component:EnforceComponent",
    "baomi.agent.media.component:MediaComponent",
    "baomi.agent.screenlock.component:ScreenlockComponent",
    "baomi.agent.posture.component:PostureComponent",
    "baomi.agent.print.component:PrintComponent",
    "baomi.agent.discovery.component:DiscoveryComponent",
    "baomi.agent.approvals:ApprovalsComponent",
    # the scheduled and the collector's requested self-inspection reports (check.report)
    "baomi.agent.selfcheck:SelfCheckComponent",
    # last: delivers what the others record
    "baomi.agent.uploader:UploaderComponent",
]


class Component(Protocol):
    name: str

    def start(self) -> None: ...
    def stop(self) -> None: ...


def _load(spec: str, ctx: AgentContext) -> Any:
    module, _, cls = spec.partition(":")
    return getattr(importlib.import_module(module), cls)(ctx)


def start_components(ctx: AgentContext, specs: list[str] | None = None) -> list[Any]:
    started = []
    for spec in COMPONENTS if specs is None else specs:
        try:
            comp = _load(spec, ctx)
            comp.start()
        except Exception as exc:  # one broken component must not take the agent down
            log.warning("component %s not started: %s", spec, exc)
            ctx.record("agent.component_failed", severity="high",
                       details={"component": spec, "error": f"{type(exc).__name__}: {exc}"})
            continue
        started.append(comp)
    return started


def run(config: AgentConfig, stop_event: threading.Event | None = None) -> int:
    main = threading.current_thread() is threading.main_thread()
    # blocked before any thread exists, so a stop signal waits for sigtimedwait, which sees its sender
    old_mask = stop_origin.block_stop_signals() if main else None
    ctx = open_context(config)
    if stop_event is not None:
        ctx.stopping = stop_event
    if main:  # a signal sent to a thread that predates the mask still stops the agent
        for sig in stop_origin.STOP_SIGNALS:
            signal.signal(sig, lambda *_: ctx.stopping.set())
    ctx.record("agent.started", details={"version": __version__, "config": str(config.source or "")})
    log.info("baomi-agent %s started (host class %s, state %s)", __version__,
             config.host.class_, config.state_dir)
    # the last verified central policy applies before any component decides anything
    from .central import policy_of
    try:
        policy_of(ctx).load_stored()
    except Exception as exc:  # never keeps the agent from starting; it runs agent.toml's table
        log.exception("central policy not loaded")
        ctx.record("agent.component_failed", severity="high",
                   details={"component": "central policy", "error": f"{type(exc).__name__}: {exc}"})
    from .central import rules_of
    try:  # the kept rules document: checked (and its refusal recorded) before any scanner starts
        rules_of(ctx).load_stored()
    except Exception as exc:
        log.exception("central rules not loaded")
        ctx.record("agent.component_failed", severity="high",
                   details={"component": "central rules", "error": f"{type(exc).__name__}: {exc}"})
    comps = start_components(ctx)
    info = None
    try:
        if main:
            info = stop_origin.wait_for_stop(ctx.stopping)
        else:
            while not ctx.stopping.wait(1.0):
                pass
    finally:
        stopped = {"version": __version__}
        try:  # read while a `systemctl stop` client is still waiting for us
            stopped.update(stop_origin.describe(info))
        except Exception:  # who stopped us must never keep the stop from being recorded
            log.exception("describing the stop")
        for comp in reversed(comps):
            try:
                comp.stop()
            except Exception:
                log.exception("stopping %s", getattr(comp, "name", comp))
        ctx.record("agent.stopped", details=stopped)
        if stopped.get("by"):
            log.warning("stopped by %s (%s)", stopped["by"], stopped["how"])
        ctx.spool.close()
        if old_mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
    return 0
