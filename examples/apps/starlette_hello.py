"""starlette_hello.py: a Starlette (ASGI) app for hfork's class "asgi" (app
= "starlette_hello:app"). GET / answers "<GREETING> from starlette"; GET
/sleep?s=0.5 answers after an asynchronous sleep. A lifespan handler runs
before hfork reports the worker ready."""

import asyncio
import contextlib
import os

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

GREETING = os.environ.get("GREETING", "hello")
state = {}


async def index(request):
    return PlainTextResponse(GREETING + " from starlette" + state.get("suffix", "") + "\n")


async def sleep(request):
    await asyncio.sleep(min(max(float(request.query_params.get("s", "1")), 0.0), 60.0))
    return PlainTextResponse(GREETING + " from starlette\n")


@contextlib.asynccontextmanager
async def lifespan(app):
    state["suffix"] = ""  # a real app opens its database pool here
    yield
    state.clear()


app = Starlette(routes=[Route("/", index), Route("/sleep", sleep)], lifespan=lifespan)
