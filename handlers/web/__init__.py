"""The no-app web form: server-rendered pages (Jinja2, no JavaScript) on the bot's HTTP server.

Routes, under ``web.path`` (``/return``):

- ``GET  /t/{token}``  a personal link: exchanged for a session cookie, then the page moves on to
  the form (a same-site refresh, so the SameSite=Strict cookie is sent even when the link was
  clicked in a webmail page); changes nothing, so a link scanner's visit is harmless.
- ``GET  /form``       the form, or what was already sent (the reference).
- ``POST /review``     check the answers: the form again with an error summary, or a review page.
- ``POST /edit``       back from the review to the form, answers kept.
- ``POST /submit``     send the tension (one-time key: a replay changes nothing).
- ``POST /nil``        the one-click nil return.
- ``/b/...``           a message's buttons by email (``handlers/web/buttons.py``).

Every POST needs the session cookie and its CSRF token. Every response carries
``Cache-Control: no-store``, ``Referrer-Policy: no-referrer`` and a strict Content-Security-Policy
(no scripts at all). Handlers decode, call one service, render; they never see SQL. Never log
form contents: they are special-category data.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape

from bot.config import Config
from bot.forms import FormDefinition, Question
from bot.returns.web import ADHOC, WebPage, WebRefused, WebReturnService, WebSession
from bot.returns.web_buttons import WebButtonService
from handlers.web.buttons import WebButtons
from handlers.web.pages import Pages

HERE = Path(__file__).parent
COOKIE = "tb_web_session"
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
CSRF_FIELD, ONCE_FIELD = "_csrf", "_once"  # question ids cannot start with "_"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["field_id"] = field_id
    return env


def field_id(question: Question) -> str:
    """The id of the element an error links to (a radio group's first radio)."""
    return f"f-{question.id}-0" if question.kind == "choice" else f"f-{question.id}"


class WebForm(Pages):
    """The handlers, bound to the core service and the configuration."""

    name = "web form"
    closes = "the form"

    def __init__(self, service: WebReturnService, config: Config) -> None:
        super().__init__(config, _environment())
        self.service = service

    # --- plumbing -------------------------------------------------------------------------

    def _session(self, request: web.Request) -> WebSession | None:
        return self.service.signer.read_session(
            request.cookies.get(COOKIE), self.service.clock.now()
        )

    async def _posted(self, request: web.Request) -> tuple[WebSession, dict[str, str]]:
        """The session and form fields of a POST whose CSRF token is right."""
        session = self._session(request)
        if session is None:
            raise _NoSession
        data = await request.post()
        fields = {k: v for k, v in data.items() if isinstance(v, str)}
        if not self.service.signer.csrf_ok(session, fields.get(CSRF_FIELD, "")):
            raise WebRefused(
                "csrf",
                "This page has expired",
                "The form could not be checked, so nothing was changed. Please open the link "
                "from your email again.",
            )
        return session, fields

    def _form(
        self,
        page: WebPage,
        session: WebSession,
        *,
        answers: Mapping[str, str] | None = None,
        errors: Mapping[str, str] | None = None,
    ) -> web.Response:
        return self._render(
            "form.html",
            status=400 if errors else 200,
            title=page.campaign_title,
            page=page,
            questions=page.form.questions,
            answers=answers or {},
            errors=errors or {},
            csrf=self.service.signer.csrf(session),
            once=secrets.token_urlsafe(16),
            nil_once=secrets.token_urlsafe(16),
            shown_if=_shown_if(page.form),
        )

    # --- routes ---------------------------------------------------------------------------

    async def open_link(self, request: web.Request) -> web.Response:
        """GET a personal link: a session cookie, then on to the form. Changes nothing."""
        try:
            session = await self.service.open_link(
                request.match_info["token"], self._session(request)
            )
        except WebRefused as refused:
            return self._problem(refused)
        response = self._render("opening.html", title="Opening your form")
        self._set_cookie(
            response, COOKIE, self.service.signer.session_value(session), self.base, session.expires
        )
        return response

    async def form(self, request: web.Request) -> web.Response:
        """GET the form, or the references already sent."""
        session = self._session(request)
        if session is None:
            return self._no_session()
        try:
            page = await self.service.page(session, sent=request.query.get("sent") == "1")
        except WebRefused as refused:
            return self._problem(refused)
        if page.state != "form":
            return self._render("done.html", title="Thank you", page=page)
        return self._form(page, session)

    async def review(self, request: web.Request) -> web.Response:
        """POST the answers: the review page, or the form with its errors."""
        try:
            session, fields = await self._posted(request)
            page = await self.service.page(session)
        except _NoSession:
            return self._no_session()
        except WebRefused as refused:
            return self._problem(refused)
        if page.state != "form":
            return self._render("done.html", title="Thank you", page=page)
        answers, errors = self.service.check(page.form, fields)
        if errors:
            return self._form(page, session, answers=fields, errors=errors)
        rows = [
            (q, page.form.display_value(q, answers[q.id]) if answers[q.id] else "Not answered")
            for q in page.form.questions
            if q.id in answers
        ]
        return self._render(
            "review.html",
            title="Check your answers",
            page=page,
            rows=rows,
            answers=answers,
            csrf=fields[CSRF_FIELD],
            once=fields.get(ONCE_FIELD, ""),
        )

    async def edit(self, request: web.Request) -> web.Response:
        """POST back from the review: the form with the answers kept."""
        try:
            session, fields = await self._posted(request)
            page = await self.service.page(session)
        except _NoSession:
            return self._no_session()
        except WebRefused as refused:
            return self._problem(refused)
        return self._form(page, session, answers=fields)

    async def submit(self, request: web.Request) -> web.Response:
        """POST the reviewed answers: one tension, then the reference."""
        try:
            session, fields = await self._posted(request)
            errors = await self.service.submit(session, fields, fields.get(ONCE_FIELD, ""))
            if errors:
                page = await self.service.page(session)
                return self._form(page, session, answers=fields, errors=errors)
        except _NoSession:
            return self._no_session()
        except WebRefused as refused:
            return self._problem(refused)
        # A report at any time shows its reference once, then the form is ready for another.
        raise web.HTTPSeeOther(
            f"{self.base}/form" + ("?sent=1" if session.campaign_id == ADHOC else "")
        )

    async def nil(self, request: web.Request) -> web.Response:
        """POST the one-click nil return."""
        try:
            session, fields = await self._posted(request)
            await self.service.nil(session, fields.get(ONCE_FIELD, ""))
        except _NoSession:
            return self._no_session()
        except WebRefused as refused:
            return self._problem(refused)
        raise web.HTTPSeeOther(f"{self.base}/form")


class _NoSession(Exception):
    """A POST without a live session."""


def _shown_if(form: FormDefinition) -> dict[str, str]:
    """A hint for each conditional question ("Only if ...": there is no script to hide it)."""
    hints: dict[str, str] = {}
    for q in form.questions:
        if q.show_if is None:
            continue
        source = form.question(q.show_if.question)
        labels = [form.display_value(source, v) for v in q.show_if.values]
        hints[q.id] = (
            f"Only if your answer to “{source.label}” was "
            + " or ".join(f"“{label}”" for label in labels)
            + "."
        )
    return hints


@web.middleware
async def _headers(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(HEADERS)
        raise
    response.headers.update(HEADERS)
    return response


async def _stylesheet(_: web.Request) -> web.Response:
    return web.Response(
        body=(HERE / "static" / "style.css").read_bytes(), content_type="text/css", charset="utf-8"
    )


def web_app(
    service: WebReturnService, config: Config, buttons: WebButtonService | None = None
) -> web.Application:
    """The web form as an aiohttp sub-application, to be mounted at ``config.web.path`` (with
    ``buttons``: the pages of emails' buttons too)."""
    form = WebForm(service, config)
    app = web.Application(middlewares=[_headers])
    app.router.add_get("/t/{token}", form.open_link)
    app.router.add_get("/form", form.form)
    app.router.add_post("/review", form.review)
    app.router.add_post("/edit", form.edit)
    app.router.add_post("/submit", form.submit)
    app.router.add_post("/nil", form.nil)
    app.router.add_get("/style.css", _stylesheet)
    if buttons is not None:

        def form_person(request: web.Request) -> int | None:
            session = form._session(request)
            return session.person_id if session is not None else None

        WebButtons(buttons, config, form.env, form_person).register(app)
    return app


__all__ = ["COOKIE", "HEADERS", "web_app"]
