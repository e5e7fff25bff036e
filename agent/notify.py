"""Desktop notifications to the user who wrote a file, in their language.

Root cannot talk to a user's session bus, so delivery goes through, in order:

1. the channels in ctx.notifiers (the per-session helper `baomi-session`
   registers one: fn(uid, summary, body, urgency) -> delivered?);
2. a forked child that drops to the user's uid/gid and calls
   org.freedesktop.Notifications.Notify on their session bus
   (unix:path=/run/user/UID/bus) with jeepney.

Messages are Chinese when the user's locale is zh_* (their LANG, else the
system locale), English otherwise.
"""
from __future__ import annotations

import logging
import os
import pwd
import time
import threading
from pathlib import Path
from typing import Any, Callable, Iterable

log = logging.getLogger(__name__)

MESSAGES: dict[str, dict[str, tuple[str, str]]] = {
    "zh": {
        "block": ("文件已被拦截:{name}",
                  "{name} 含{level_zh}级标志,不能拷贝到此移动存储介质({reason})。文件已移入隔离区。确需拷贝的,可申请审批:baomi-session request 文件路径 --reason 理由。"),
        "block_uninspectable": ("文件已被拦截:{name}",
                                "无法检查 {name} 的内容({why}),按规定不能拷贝到此移动存储介质。请联系保密管理员。"),
        "notify": ("请注意:{name}",
                   "{name} 为{level_zh}文件,已拷贝到移动存储介质。此次拷贝已记录。"),
        "notify_uninspectable": ("请注意:{name}", "无法检查 {name} 的内容({why}),此次拷贝已记录。"),
        "print_block": ("打印已被拦截:{name}",
                        "{name} 为{level_zh}文件,不能在打印机 {printer} 上打印({reason})。如需打印请联系保密管理员。"),
        "print_block_uninspectable": ("打印已被拦截:{name}",
                                      "无法检查 {name} 的内容({why}),按规定不能在打印机 {printer} 上打印。"),
        "print_notify": ("请注意:{name}", "{name} 为{level_zh}文件,已在打印机 {printer} 上打印。此次打印已记录。"),
        "print_notify_uninspectable": ("请注意:{name}", "无法检查 {name} 的内容({why}),此次打印已记录。"),
        "approval_granted": ("拷贝审批已批准:{name}",
                             "保密管理员 {by} 已批准将 {name} 拷贝到 {medium},有效期至 {expires}{copies}。{comment}"),
        "approval_refused": ("拷贝审批未批准:{name}", "保密管理员 {by} 未批准将 {name} 拷贝到 {medium}。{comment}"),
    },
    "en": {
        "block": ("File blocked: {name}",
                  "{name} is marked {level_en} and may not be copied to this removable medium ({reason}). "
                  "It was moved to quarantine. If it must be copied, ask for approval: "
                  "baomi-session request PATH --reason WHY."),
        "block_uninspectable": ("File blocked: {name}",
                                "The content of {name} could not be inspected ({why}), so it may not be copied "
                                "to this removable medium. Ask your security administrator."),
        "notify": ("Notice: {name}",
                   "{name} is an {level_en} file and was copied to a removable medium. The copy was recorded."),
        "notify_uninspectable": ("Notice: {name}",
                                 "The content of {name} could not be inspected ({why}); the copy was recorded."),
        "print_block": ("Printing blocked: {name}",
                        "{name} is marked {level_en} and may not be printed on {printer} ({reason}). "
                        "Ask your security administrator if it must be printed."),
        "print_block_uninspectable": ("Printing blocked: {name}",
                                      "The content of {name} could not be inspected ({why}), so it may not be "
                                      "printed on {printer}."),
        "print_notify": ("Notice: {name}", "{name} is an {level_en} document and was printed on {printer}. "
                                           "The print job was recorded."),
        "approval_granted": ("Copy approved: {name}",
                             "Security administrator {by} approved copying {name} to {medium} until {expires}"
                             "{copies}. {comment}"),
        "approval_refused": ("Copy not approved: {name}",
                             "Security administrator {by} did not approve copying {name} to {medium}. {comment}"),
        "print_notify_uninspectable": ("Notice: {name}",
                                       "The content of {name} could not be inspected ({why}); the print job was recorded."),
    },
}


def system_lang(default_locale: Path = Path("/etc/default/locale"),
                locale_conf: Path = Path("/etc/locale.conf")) -> str | None:
    for path in (default_locale, locale_conf):
        try:
            for line in path.read_text("utf-8", "replace").splitlines():
                key, _, value = line.strip().partition("=")
                if key in ("LC_ALL", "LC_MESSAGES", "LANG") and value:
                    return value.strip().strip('"')
        except OSError:
            continue
    return None


def user_lang(uid: int, hint: str | None = None, proc: Path = Path("/proc")) -> str | None:
    """The user's LANG: the writer's own (hint), else any of their processes', else the system's."""
    if hint:
        return hint
    from .procinfo import lang_of
    try:
        pids = [p.name for p in proc.iterdir() if p.name.isdigit()]
    except OSError:
        pids = []
    for pid in pids:
        try:
            if (proc / pid).stat().st_uid != uid:
                continue
        except OSError:
            continue
        lang = lang_of(int(pid))
        if lang:
            return lang
    return system_lang()


def language(lang: str | None) -> str:
    return "zh" if (lang or "").lower().startswith("zh") else "en"


def render(key: str, lang: str | None, **params: Any) -> tuple[str, str]:
    summary, body = MESSAGES[language(lang)][key]
    return summary.format(**params), body.format(**params)


def session_bus_address(uid: int) -> str | None:
    path = Path(f"/run/user/{uid}/bus")
    return f"unix:path={path}" if path.exists() else None


def _notify_call(summary: str, body: str, urgency: str) -> Any:
    from jeepney import DBusAddress, new_method_call
    level = {"low": 0, "normal": 1, "critical": 2}.get(urgency, 1)
    addr = DBusAddress("/org/freedesktop/Notifications", bus_name="org.freedesktop.Notifications",
                       interface="org.freedesktop.Notifications")
    return new_method_call(addr, "Notify", "susssasa{sv}i",
                           ("baomi", 0, "dialog-warning", summary, body, [], {"urgency": ("y", level)}, -1))


def send_as_user(uid: int, summary: str, body: str, urgency: str = "normal",
                 address: str | None = None, timeout: float = 5.0) -> bool:
    """Fork a child that drops to `uid` (and its groups) and calls Notify on the
    user's session bus; True if the server accepted it.

    A fork rather than a new interpreter: the child needs nothing but an open
    socket and jeepney (imported here, before forking), and the agent's own
    installation need not be readable by the user."""
    address = address or session_bus_address(uid)
    if address is None:
        return False
    try:
        gid = pwd.getpwuid(uid).pw_gid
    except KeyError:
        gid = uid
    from jeepney.io.blocking import open_dbus_connection
    call = _notify_call(summary, body, urgency)
    pid = os.fork()
    if pid == 0:  # child: no threads, no logging, only the D-Bus call
        code = 1
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            with open_dbus_connection(bus=address, auth_timeout=timeout) as conn:
                reply = conn.send_and_get_reply(call, timeout=timeout)
            code = 0 if reply.header.message_type.name != "error" else 3
        except BaseException:
            code = 2
        finally:
            os._exit(code)
    end = time.monotonic() + timeout + 1
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            ok = os.waitstatus_to_exitcode(status) == 0
            if not ok:
                log.info("notification to uid %s not delivered (child status %s)", uid, status)
            return ok
        if time.monotonic() > end:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            log.info("notification to uid %s timed out", uid)
            return False
        time.sleep(0.02)


def deliver(uid: int, summary: str, body: str, urgency: str = "normal",
            notifiers: Iterable[Callable[[int, str, str, str], bool]] = (),
            address: str | None = None) -> str | None:
    """Try each channel; returns the one that delivered ("helper" / "session-bus") or None."""
    for fn in list(notifiers):
        try:
            if fn(uid, summary, body, urgency):
                return "helper"
        except Exception:
            log.exception("notifier %r failed", fn)
    if send_as_user(uid, summary, body, urgency, address=address):
        return "session-bus"
    return None


def deliver_async(uid: int, summary: str, body: str, urgency: str,
                  notifiers: Iterable[Callable[[int, str, str, str], bool]] = (),
                  on_done: Callable[[str | None], None] | None = None) -> threading.Thread:
    """Deliver without holding up enforcement (a session bus may be slow to answer)."""
    def run() -> None:
        channel = deliver(uid, summary, body, urgency, notifiers)
        if on_done:
            on_done(channel)
    t = threading.Thread(target=run, name="baomi-notify", daemon=True)
    t.start()
    return t
