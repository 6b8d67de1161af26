"""The bare floor for webhook ingest: verify HubSpot's signature, parse, store the raw batch,
commit, answer. Nothing else, on the same server stack (Starlette on uvicorn) and the same
engine settings as privasync, so the ratio of the two measures what privasync adds.

    python -m bench.floor --database URL --port P --secret S
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime

import uvicorn
from sqlalchemy import Column, DateTime, Integer, LargeBinary, MetaData, Table
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core.db import make_engine

metadata = MetaData()
raw = Table("floor_inbox", metadata,
            Column("id", Integer, primary_key=True, autoincrement=True),
            Column("received_at", DateTime(timezone=True), nullable=False),
            Column("body", LargeBinary, nullable=False))


def app(engine: Engine, secret: bytes) -> Starlette:
    def store(body: bytes) -> None:
        with engine.begin() as conn:
            conn.execute(raw.insert().values(received_at=datetime.now(UTC), body=body))

    async def hubspot(request: Request) -> Response:
        body = await request.body()
        stamp = request.headers.get("x-hubspot-request-timestamp", "")
        source = b"POST" + str(request.url).encode() + body + stamp.encode()
        expected = base64.b64encode(hmac.new(secret, source, hashlib.sha256).digest())
        if not hmac.compare_digest(expected, request.headers.get(
                "x-hubspot-signature-v3", "").encode()):
            return JSONResponse({"error": "Unauthenticated"}, 401)
        batch = json.loads(body)
        if not isinstance(batch, list):
            return JSONResponse({"error": "BadInput"}, 400)
        await run_in_threadpool(store, body)
        return JSONResponse({"accepted": len(batch), "duplicate": False})

    async def ready(request: Request) -> Response:
        return JSONResponse({"status": "ready"})

    return Starlette(routes=[Route("/webhooks/hubspot", hubspot, methods=["POST"]),
                             Route("/readyz", ready)])


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.floor")
    p.add_argument("--database", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--secret", required=True)
    args = p.parse_args()
    engine = make_engine(args.database)
    metadata.create_all(engine)
    uvicorn.run(app(engine, args.secret.encode()), host="127.0.0.1", port=args.port,
                access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
