"""The summaries room's own port: what draws a summary's charts (an output adapter in
``handlers/files``, given to :class:`bot.summaries.service.SummaryService` by the composition
root)."""

from __future__ import annotations

from typing import Protocol

from bot.messages import Attachment
from bot.summaries.model import Summary


class Charts(Protocol):
    """Draws a summary's charts (an output adapter: ``handlers/files``). Every chart is drawn
    from the summary's protected figures; the drawing library is loaded only when one is made."""

    def for_summary(self, summary: Summary) -> list[Attachment]:
        """The charts the summary gets (none for an empty period), as PNG attachments with
        their titles and alt text."""
        ...
