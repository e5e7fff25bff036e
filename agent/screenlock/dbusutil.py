"""Small D-Bus conveniences over jeepney's blocking connection (one connection per thread)."""
from __future__ import annotations

from typing import Any

from jeepney import DBusAddress, new_method_call
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import DBusConnection
from jeepney.wrappers import Properties, unwrap_msg

DEFAULT_TIMEOUT = 5.0


def call(conn: DBusConnection, bus_name: str, path: str, interface: str, method: str,
         signature: str | None = None, args: tuple = (), timeout: float = DEFAULT_TIMEOUT) -> tuple:
    """Call a method and return its unwrapped reply body; a D-Bus error raises DBusErrorResponse."""
    addr = DBusAddress(path, bus_name=bus_name, interface=interface)
    msg = new_method_call(addr, method, signature, args)
    return unwrap_msg(conn.send_and_get_reply(msg, timeout=timeout))


def get_all(conn: DBusConnection, bus_name: str, path: str, interface: str,
            timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    addr = DBusAddress(path, bus_name=bus_name, interface=interface)
    (props,) = unwrap_msg(conn.send_and_get_reply(Properties(addr).get_all(), timeout=timeout))
    return {k: v[1] for k, v in props.items()}


def name_has_owner(conn: DBusConnection, name: str, timeout: float = DEFAULT_TIMEOUT) -> bool:
    (owned,) = unwrap_msg(conn.send_and_get_reply(message_bus.NameHasOwner(name), timeout=timeout))
    return bool(owned)
