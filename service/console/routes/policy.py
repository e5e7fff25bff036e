"""The policy table the agents apply (read-only)."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from baomi.common import policy as agent_policy
from baomi.common.levels import Level

from .. import auth
from ..web import Web


def router(web: Web) -> APIRouter:
    r = APIRouter(include_in_schema=False)

    @r.get("/policy")
    def policy(request: Request, s: auth.Session = web.need("policy.view")) -> Response:
        device = [(rule, action) for rule, action in agent_policy.DEVICE_DEFAULTS.items() if action]
        files = []
        for host_class in ("classified", "unclassified"):
            for level in Level:
                d = agent_policy.file_action(host_class, "personal", level)
                files.append((host_class, level.id, d.action, d.rule))
        return web.render(request, "policy.html", device=device, files=files)

    return r
