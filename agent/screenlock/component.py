"""ScreenlockComponent: the helper socket, the desktop settings and the enforcement loop.

start() never raises for a missing logind or a failing settings install: the
enforcer warns, records the problem and keeps retrying while the rest of the
agent runs.
"""
from __future__ import annotations

import logging
import threading

from ..context import AgentContext
from .desktop_settings import DesktopSettings
from .enforcer import Enforcer, helper_report_s
from .server import HelperLimits, HelperServer

log = logging.getLogger("baomi.agent.screenlock")

SETTINGS_CHECK_S = 60.0


class ScreenlockComponent:
    name = "screenlock"

    def __init__(self, ctx: AgentContext) -> None:
        self.ctx = ctx
        self.cfg = ctx.config.screenlock
        self.server: HelperServer | None = None
        self.enforcer: Enforcer | None = None
        self.settings = DesktopSettings(self.cfg.settings_root, self.cfg.idle_limit_s)
        self._stop = threading.Event()
        self._settings_thread: threading.Thread | None = None

    def start(self) -> None:
        if not self.cfg.enabled:
            log.info("screen lock disabled in agent.toml")
            return
        self.enforcer = Enforcer(self.ctx)
        self.server = HelperServer(self.cfg.helper_socket, self.ctx.record,
                                   check_session=self.enforcer.check_session,
                                   report_s=helper_report_s(self.cfg),
                                   on_state=self.enforcer.helper_state,
                                   on_disconnect=self.enforcer.helper_gone,
                                   limits=HelperLimits.from_config(self.cfg))
        self.enforcer.server = self.server
        try:
            self.server.start()
            self.ctx.notifiers.append(self.server.notify)
        except OSError as exc:  # no helpers, but logind locking still works
            log.warning("helper socket %s not available: %s", self.cfg.helper_socket, exc)
            self.ctx.record("screenlock.helper_socket_failed", severity="high",
                            details={"socket": str(self.cfg.helper_socket), "error": str(exc)})
            self.server = None
            self.enforcer.server = None
        self.enforcer.start()
        if self.cfg.manage_desktop_settings:
            self._settings_thread = threading.Thread(target=self._keep_settings, name="screenlock-settings",
                                                     daemon=True)
            self._settings_thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self.enforcer:
            self.enforcer.stop()
        if self.server:
            if self.server.notify in self.ctx.notifiers:
                self.ctx.notifiers.remove(self.server.notify)
            self.server.stop()
        if self._settings_thread:
            self._settings_thread.join(timeout=5)

    def _keep_settings(self) -> None:
        first = True
        last_error = None
        while not self._stop.is_set():
            try:
                repaired = self.settings.apply()
                last_error = None
            except Exception as exc:
                if str(exc) != last_error:  # once per distinct problem, not every minute
                    log.warning("desktop screen-lock settings not installed: %s", exc)
                    self.ctx.record("screenlock.settings_failed", severity="medium",
                                    details={"root": str(self.cfg.settings_root), "error": str(exc)})
                last_error = str(exc)
                repaired = []
            if repaired and not first:  # someone changed our files after we installed them
                self.ctx.record("screenlock.settings_drift", severity="medium",
                                details={"source": "files", "repaired": [
                                    {"file": c.file, "reason": c.reason} for c in repaired]})
            elif repaired:
                log.info("desktop screen-lock settings installed under %s", self.cfg.settings_root)
            first = False
            self._stop.wait(SETTINGS_CHECK_S)
