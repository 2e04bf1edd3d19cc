"""SQLAlchemy implementations of the repository protocols in :mod:`bot.ports`.

Repositories add and flush; only the unit of work commits. Aggregations are SQL (GROUP BY).

One module per aggregate; :mod:`.base` holds what they share.
"""

from storage.repositories.actions import SqlActionRepo
from storage.repositories.audit import SqlAuditRepo
from storage.repositories.campaigns import SqlCampaignRepo, SqlDeliveryRepo
from storage.repositories.conversations import SqlConversationRepo
from storage.repositories.figures import SqlFigureRepo
from storage.repositories.forms import SqlFormRepo
from storage.repositories.inbound import SqlInboundRepo, SqlSeenRequestRepo
from storage.repositories.outbox import SqlOutboxRepo
from storage.repositories.pact import SqlPactRepo
from storage.repositories.people import SqlInviteRepo, SqlPeopleRepo
from storage.repositories.reports import SqlReportRepo
from storage.repositories.state import SqlStateRepo

__all__ = [
    "SqlActionRepo",
    "SqlAuditRepo",
    "SqlCampaignRepo",
    "SqlConversationRepo",
    "SqlDeliveryRepo",
    "SqlFigureRepo",
    "SqlFormRepo",
    "SqlInboundRepo",
    "SqlInviteRepo",
    "SqlOutboxRepo",
    "SqlPactRepo",
    "SqlPeopleRepo",
    "SqlReportRepo",
    "SqlSeenRequestRepo",
    "SqlStateRepo",
]
