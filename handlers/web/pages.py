"""What the web form's handlers and the email buttons' handlers share: a page rendered with the
partnership's name, a refusal's page, the "your session has ended" page and a session cookie.
Each handler class names its pages (``name``, for the log) and what closes when its session
ends (``closes``)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from aiohttp import web
from jinja2 import Environment

from bot.config import Config
from bot.returns.web import WebRefused

log = logging.getLogger(__name__)


class Pages:
    """A set of server-rendered pages under ``web.path``."""

    name = "web page"  # in the refusal's log line
    closes = "this page"  # on the "session has ended" page

    def __init__(self, config: Config, env: Environment) -> None:
        self.config, self.env = config, env
        self.base = config.web.path

    def _render(self, template: str, status: int = 200, **context: Any) -> web.Response:
        body = self.env.get_template(template).render(
            base=self.base, partnership=self.config.partnership.name, **context
        )
        return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")

    def _problem(self, refused: WebRefused) -> web.Response:
        # The kind only: never the person's answers or the token.
        log.info("%s refused: %s", self.name, refused.kind)
        return self._render(
            "problem.html", status=refused.status, title=refused.title, text=refused.text
        )

    def _no_session(self) -> web.Response:
        return self._problem(
            WebRefused(
                "no_session",
                "Your session has ended",
                f"For your security {self.closes} closes after a while, and nothing was changed. "
                "Please open the link from your email again.",
                status=401,
            )
        )

    def _set_cookie(
        self, response: web.Response, name: str, value: str, path: str, expires: datetime
    ) -> None:
        """A session cookie: HTTP only, same-site strict, until ``expires``."""
        response.set_cookie(
            name,
            value,
            path=path,
            expires=expires.strftime("%a, %d %b %Y %H:%M:%S GMT"),
            httponly=True,
            secure=self.config.web.secure_cookies,
            samesite="Strict",
        )
