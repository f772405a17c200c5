"""tornado_hello.py: a Tornado app for hfork's class "tornado" (app =
"tornado_hello:make_app()"). GET / answers "<GREETING> from tornado"; GET
/sleep?s=0.5 answers after an asynchronous sleep."""

import asyncio
import os

import tornado.web

GREETING = os.environ.get("GREETING", "hello")


class Index(tornado.web.RequestHandler):
    def get(self):
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.write(GREETING + " from tornado\n")


class Sleep(tornado.web.RequestHandler):
    async def get(self):
        await asyncio.sleep(min(max(float(self.get_argument("s", "1")), 0.0), 60.0))
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.write(GREETING + " from tornado\n")


def make_app():
    return tornado.web.Application([(r"/", Index), (r"/sleep", Sleep)])
