"""Control HTTP endpoints under /_sim: faults, pause/resume, the true book, connections."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from ttxt_mp.sim.faults import FaultSpec

if TYPE_CHECKING:
    from ttxt_mp.sim.simulator import Simulator


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=msgspec.json.encode(data), status=status, content_type="application/json")


def control_app(sim: Simulator) -> web.Application:
    app = web.Application()

    async def fault(request: web.Request) -> web.Response:
        try:
            spec = msgspec.json.decode(await request.read(), type=FaultSpec)
            return _json(sim.fault(spec))
        except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as e:
            return _json({"error": f"bad fault request: {e}"}, 400)
        except KeyError as e:
            return _json({"error": str(e.args[0])}, 404)

    async def cancel(request: web.Request) -> web.Response:
        body = msgspec.json.decode(await request.read() or b"{}")
        return _json({"cancelled": sim.cancel_fault(int(body.get("scheduled", -1)))})

    async def pause(request: web.Request) -> web.Response:
        return _json({"paused": True, "update_ids": sim.pause()})

    async def resume(request: web.Request) -> web.Response:
        return _json({"paused": False, "update_ids": sim.resume()})

    async def truth(request: web.Request) -> web.Response:
        q = request.query
        if "venue" not in q or "symbol" not in q:
            return _json({"error": "truth needs ?venue=...&symbol=..."}, 400)
        try:
            depth = int(q["depth"]) if "depth" in q else None
            return _json(sim.truth(q["venue"], q["symbol"], depth))
        except KeyError as e:
            return _json({"error": str(e.args[0])}, 404)
        except ValueError:
            return _json({"error": "depth must be an integer"}, 400)

    async def restart(request: web.Request) -> web.Response:
        """Body ``{"venue": id, "symbol": s}``, both optional: without a venue, the one
        simulated venue that has a restart; without a symbol, every symbol."""
        body = msgspec.json.decode(await request.read() or b"{}")
        try:
            name = sim.restart(body.get("venue"), body.get("symbol"))
        except KeyError as e:
            return _json({"error": str(e.args[0])}, 404)
        except ValueError as e:
            return _json({"error": str(e)}, 400)
        return _json({"restarted": body.get("symbol") or "all", "venue": name})

    async def connections(request: web.Request) -> web.Response:
        return _json(sim.connections(request.query.get("venue")))

    async def status(request: web.Request) -> web.Response:
        return _json({"paused": sim.paused, "steps": sim.steps, "update_ids": sim.update_ids(),
                      "connections": len(sim.connections())})

    app.router.add_post("/fault", fault)
    app.router.add_post("/fault/cancel", cancel)
    app.router.add_post("/pause", pause)
    app.router.add_post("/resume", resume)
    app.router.add_post("/restart", restart)
    app.router.add_get("/truth", truth)
    app.router.add_get("/connections", connections)
    app.router.add_get("/status", status)
    return app
