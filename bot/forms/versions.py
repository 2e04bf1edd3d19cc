"""Form versions: the current form is stored once per version; old versions stay readable."""

from __future__ import annotations

from dataclasses import dataclass

from bot.clock import Clock
from bot.domain import FormVersion
from bot.forms import FormDefinition, FormError, parse_form
from bot.ports import UnitOfWork


@dataclass(frozen=True)
class CurrentForm:
    """The form new campaigns and reports use, with its stored id."""

    id: int
    definition: FormDefinition


class FormService:
    """Keeps the form definition and its stored versions in step."""

    def __init__(self, definition: FormDefinition, clock: Clock) -> None:
        self._definition = definition
        self._clock = clock
        self._cache: dict[int, FormDefinition] = {}
        self._current_id: int | None = None

    async def current(self, uow: UnitOfWork) -> CurrentForm:
        """The current form, stored on first use. A changed file must bump ``version``."""
        if self._current_id is not None:
            return CurrentForm(self._current_id, self._definition)
        form = self._definition
        stored = await uow.forms.ensure(
            FormVersion(
                version=form.version,
                sha256=form.sha256(),
                definition=form.model_dump(mode="json"),
                created_at=self._clock.now(),
            )
        )
        if stored.sha256 != form.sha256():
            raise FormError(
                f"the form file changed but its version is still {form.version!r}: "
                "give it a new version so earlier returns keep the questions they were sent with"
            )
        assert stored.id is not None
        self._current_id = stored.id
        self._cache[stored.id] = form
        return CurrentForm(stored.id, form)

    async def definition(self, uow: UnitOfWork, form_version_id: int) -> FormDefinition:
        """The definition a campaign or conversation was started with."""
        cached = self._cache.get(form_version_id)
        if cached is not None:
            return cached
        stored = await uow.forms.get(form_version_id)
        if stored is None:
            raise FormError(f"form version id {form_version_id} is not stored")
        form = parse_form(stored.definition, source=f"stored form {stored.version}")
        self._cache[form_version_id] = form
        return form
