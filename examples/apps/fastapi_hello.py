"""fastapi_hello.py: a FastAPI app for hfork's class "asgi" (app =
"fastapi_hello:app"). GET / answers {"greeting": "<GREETING> from fastapi"}."""

import os

from fastapi import FastAPI

GREETING = os.environ.get("GREETING", "hello")

app = FastAPI()


@app.get("/")
async def index():
    return {"greeting": GREETING + " from fastapi"}
