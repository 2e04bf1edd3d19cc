"""A message's buttons by email, on the web (``bot.returns.web_buttons``). Routes, under
``web.path``:

- ``GET  /b/t/{token}``  a button's personal link: exchanged for a button session cookie, then a
  same-site refresh to the page (the token leaves the address bar); changes nothing.
- ``GET  /b``            the confirmation page: the question and its buttons; changes nothing.
- ``POST /b``            press one (CSRF token and a one-time key: a replay changes nothing), or
  send a meeting's record (a form: shown again with the errors by field until it is stored).

The security headers are the web form's (its middleware). Handlers decode, call one service,
render.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from aiohttp import web
from jinja2 import Environment

from bot.config import Config
from bot.returns.web import WebRefused, WebSigner
from bot.returns.web_buttons import ButtonPage, ButtonSession, WebButtonService
from handlers.web.pages import Pages

BUTTON_COOKIE = "tb_web_button"


class WebButtons(Pages):
    """The handlers, bound to the core service."""

    name = "button page"
    closes = "this page"

    def __init__(
        self,
        service: WebButtonService,
        config: Config,
        env: Environment,
        form_person: Callable[[web.Request], int | None],
    ) -> None:
        super().__init__(config, env)
        self.service = service
        self.form_person = form_person  # who the browser's form session is for, if anyone

    def _session(self, request: web.Request) -> ButtonSession | None:
        return self.service.session(request.cookies.get(BUTTON_COOKIE))

    async def open_link(self, request: web.Request) -> web.Response:
        """GET a button's link: a session cookie, then on to the page. Changes nothing."""
        current = {p for p in (self.form_person(request),) if p is not None}
        held = self._session(request)
        if held is not None:
            current.add(held.person_id)
        try:
            session = await self.service.open_link(request.match_info["token"], current)
        except WebRefused as refused:
            return self._problem(refused)
        response = self._render(
            "opening.html", title="Opening the page", target=f"{self.base}/b", what="the page"
        )
        self._set_cookie(
            response,
            BUTTON_COOKIE,
            self.service.session_value(session),
            f"{self.base}/b",
            session.expires,
        )
        return response

    async def page(self, request: web.Request) -> web.Response:
        """GET the confirmation page."""
        session = self._session(request)
        if session is None:
            return self._no_session()
        try:
            page = await self.service.page(session)
        except WebRefused as refused:
            return self._problem(refused)
        return self._page(session, page)

    def _page(self, session: ButtonSession, page: ButtonPage) -> web.Response:
        return self._render(
            "record.html" if page.record is not None else "button.html",
            title=page.title,
            page=page,
            csrf=self.signer.csrf(session),
            once=secrets.token_urlsafe(16),
        )

    async def press(self, request: web.Request) -> web.Response:
        """POST a press: the core's answer."""
        session = self._session(request)
        if session is None:
            return self._no_session()
        data = await request.post()
        fields = {k: v for k, v in data.items() if isinstance(v, str)}
        try:
            if not self.signer.csrf_ok(session, fields.get("_csrf", "")):
                raise WebRefused(
                    "csrf",
                    "This page has expired",
                    "The answer could not be checked, so nothing was changed. Please open the "
                    "link from your email again.",
                )
            if "_record" in fields:
                values = {
                    k: [v for v in data.getall(k) if isinstance(v, str)]
                    for k in set(data.keys())
                    if not k.startswith("_")
                }
                text, page = await self.service.record(session, values, fields.get("_once", ""))
                if text is None:  # the form again, with what was typed and why not
                    return self._page(session, page)
            else:
                text = await self.service.press(
                    session, fields.get("choice", ""), fields.get("_once", "")
                )
        except WebRefused as refused:
            return self._problem(refused)
        return self._render("button_done.html", title="Thank you", text=text)

    @property
    def signer(self) -> WebSigner:
        """The web's signer (for the CSRF token of a button session)."""
        return self.service.signer

    def register(self, app: web.Application) -> None:
        """Add the routes to the web form's sub-application."""
        app.router.add_get("/b/t/{token}", self.open_link)
        app.router.add_get("/b", self.page)
        app.router.add_post("/b", self.press)
