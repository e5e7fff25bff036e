"""Removable media: detection (uevents, sysfs, mountinfo), identity, registry and the device gate.

The component (component.py) wires the sources to the pure policy decision
(baomi.common.policy.device_action) and applies its effects through gate.py.
"""
