"""The dashboard: counts and the severity chart for a period."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from baomi.common.events import SEVERITIES

from .. import auth, charts, i18n, queries, rollup
from ..web import Web


def router(web: Web) -> APIRouter:
    r = APIRouter(include_in_schema=False)

    @r.get("/dashboard")
    def dashboard(request: Request, period: str = "24h", s: auth.Session = web.need("dashboard.view")) -> Response:
        if period not in queries.PERIODS:
            raise queries.FilterError("period", f"{period[:20]!r} is not one of {', '.join(queries.PERIODS)}")
        rollup.refresh(web.engine)
        with web.engine.connect() as conn:
            data = queries.dashboard(conn, period, web.cfg.offline_after_s, tz=web.tz)
        t = i18n.translator(web.locale_of(request))
        chart = charts.stacked_bars(data["labels"], data["series"], title=t("dashboard.chart_title"),
                                    names={sv: t(f"severity.{sv}") for sv in SEVERITIES})
        return web.render(request, "dashboard.html", d=data, chart=chart, periods=list(queries.PERIODS))

    return r
