"""aiohttp_hello.py: an aiohttp app for hfork's class "aiohttp" (app =
"aiohttp_hello:app"). GET / answers "<GREETING> from aiohttp"; GET
/sleep?s=0.5 answers after an asynchronous sleep."""

import asyncio
import os

from aiohttp import web

GREETING = os.environ.get("GREETING", "hello")


async def index(request):
    return web.Response(text=GREETING + " from aiohttp\n")


async def sleep(request):
    await asyncio.sleep(min(max(float(request.query.get("s", "1")), 0.0), 60.0))
    return web.Response(text=GREETING + " from aiohttp\n")


app = web.Application()
app.add_routes([web.get("/", index), web.get("/sleep", sleep)])
