"""The words the bot says, as platform-neutral messages (no markup, no escaping here)."""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo

from bot.boundaries import WardCheck
from bot.buttons import ButtonAction, Kind
from bot.common import local_time, period_label
from bot.domain import Campaign, Conversation, Report, Role
from bot.forms import FormDefinition, Question
from bot.messages import Button, MessageBuilder, OutgoingMessage, bold, code, italic

REPORTER_COMMANDS = (
    ("/return", "answer this month's return (or carry on with it)"),
    ("/report", "report an urgent tension at any time"),
    ("/status", "your open returns and your reports"),
    ("/cancel", "stop what you are filling in (nothing is sent)"),
)
CHAIR_COMMANDS = (
    ("/meeting", "PACT chairs: record a meeting (attendance and priorities)"),
    ("/schedule", "PACT chairs: schedule a meeting (step by step, or in one line)"),
)
SUMMARY_COMMANDS = (
    ("/summary", "the tension summary: /summary [YYYY-MM] [ward] [category]"),
    ("/pact", "which PACT times and venues draw people: /pact [neighbourhood]"),
    ("/crisis", "a daily or weekly extra return: /crisis daily WARDS [until YYYY-MM-DD] | stop"),
)
HELP_COMMAND = ("/help", "this message")


def commands_for(role: str, *, chair: bool) -> list[tuple[str, str]]:
    """The commands this person may use, as (command, what it does): everyone reports; chairs
    (and admins) record and schedule PACT meetings; the Prevent and Cohesion Officer and admins
    see summaries. The /help text and the Telegram command menu both come from this."""
    commands = list(REPORTER_COMMANDS)
    if chair or role == Role.ADMIN.value:
        commands += CHAIR_COMMANDS
    if role in (Role.PREVENT_OFFICER.value, Role.ADMIN.value):
        commands += SUMMARY_COMMANDS
    return [*commands, HELP_COMMAND]


def _btn(label: str, action: ButtonAction) -> Button:
    return Button(label=label, data=action.encode())


def help_message(
    partnership: str, form: FormDefinition, commands: Sequence[tuple[str, str]]
) -> OutgoingMessage:
    """The /help text, listing ``commands`` (:func:`commands_for` the person)."""
    b = MessageBuilder().line(bold(f"{partnership}: community tension reporting"))
    b.line(
        "Each month you will get a short form about tensions in your community. "
        "You can also report an urgent tension at any time."
    )
    for command, what in commands:
        b.line(code(command), f" {what}")
    b.blank().line(italic(form.emergency_notice))
    return b.build()


def form_message(
    campaign: Campaign,
    form: FormDefinition,
    tz: ZoneInfo,
    *,
    reminder: bool = False,
    follow_up: bool = False,
) -> OutgoingMessage:
    """The form as sent (or as a reminder, or as the follow-up of a form whose delivery is
    uncertain): intro, gate question and the two big buttons."""
    b = MessageBuilder()
    if follow_up:
        # The first copy may have arrived after all: worded so that a second one is harmless.
        b.line(
            bold("In case our earlier message did not reach you: "),
            f"here is the {campaign.title} again. If you have already seen it, please ignore "
            "this copy.",
        )
    elif reminder:
        b.line(bold("Reminder: "), f"we have not had your {campaign.title} yet.")
    else:
        b.line(bold(campaign.title))
    b.line(form.intro)
    b.line(bold(form.gate_prompt))
    b.line(f"Please reply by {local_time(campaign.closes_at, tz)}.")
    b.blank().line(italic(form.emergency_notice))
    assert campaign.id is not None
    b.row(_btn("Report a tension", ButtonAction(Kind.START, campaign.id)))
    b.row(_btn("Nothing to report this time", ButtonAction(Kind.NIL, campaign.id)))
    return b.build()


def form_started(campaign: Campaign, form: FormDefinition, tz: ZoneInfo) -> OutgoingMessage:
    """The form once its "Report a tension" button is taken: the same words, no buttons."""
    b = MessageBuilder().line(bold(campaign.title)).line(form.intro)
    b.line(f"Please reply by {local_time(campaign.closes_at, tz)}.")
    b.line(italic("Started: the questions follow below."))
    b.blank().line(italic(form.emergency_notice))
    return b.build()


def nil_recorded(campaign: Campaign) -> OutgoingMessage:
    """Confirmation of a nil return (replaces the form message)."""
    assert campaign.id is not None
    return (
        MessageBuilder()
        .line(bold(campaign.title))
        .line("Thank you: your nil return is recorded. Nothing to report is useful to know too.")
        .line("If something comes up, send /report at any time.")
        .row(_btn("Report a tension after all", ButtonAction(Kind.START, campaign.id)))
        .build()
    )


def outside_ward(check: WardCheck, conv: Conversation, wards: Sequence[str]) -> OutgoingMessage:
    """A shared point is outside the ward chosen: say so politely; offer the ward it looks like
    (carrying on keeps the ward chosen)."""
    b = MessageBuilder()
    if check.looks_like is not None and check.looks_like in wards:
        b.line(
            f"Thank you. That point looks like it is in {check.looks_like}, not "
            f"{check.chosen} (the ward you chose)."
        )
        b.line(
            f"If the tension is in {check.looks_like}, change the ward; otherwise just carry on."
        )
        assert conv.id is not None
        data = ButtonAction(Kind.WARD, conv.id, 0, list(wards).index(check.looks_like)).encode()
        b.row(Button(label=f"Change the ward to {check.looks_like}", data=data))
    else:
        b.line(
            f"Thank you. That point looks like it is outside {check.chosen} (the ward you "
            "chose). If so, you can change the ward at the review (Edit); otherwise just "
            "carry on."
        )
    return b.build()


def campaign_closed(campaign: Campaign, tz: ZoneInfo) -> OutgoingMessage:
    """Someone answered a return that has closed."""
    return (
        MessageBuilder()
        .line(f"The {campaign.title} closed on {local_time(campaign.closes_at, tz)}.")
        .line("To report a tension now, send /report. Anything you had started is kept.")
        .build()
    )


def _progress(conv: Conversation, form: FormDefinition, q: Question) -> str:
    visible = form.visible_questions(conv.draft)
    n = [v.id for v in visible].index(q.id) + 1 if q in visible else 0
    tension = f"Tension {len(conv.tensions) + 1} · " if conv.tensions else ""
    return f"{tension}Question {n} of {len(visible)}"


def question_message(
    conv: Conversation, form: FormDefinition, q: Question, wards: Sequence[str], note: str = ""
) -> OutgoingMessage:
    """One question, with its choices and the navigation row."""
    assert conv.id is not None
    b = MessageBuilder()
    if note:
        b.line(italic(note))
    b.line(italic(_progress(conv, form, q)))
    b.line(bold(q.prompt))
    current = conv.draft.get(q.id)
    if q.kind == "text":
        b.line("Type your answer and send it." + (" Or tap Skip." if q.optional else ""))
    if current is not None:
        b.line(
            "Current answer: ", italic(form.display_value(q, current) if current else "(skipped)")
        )
    if q.id == "description":
        b.line(italic(form.prevent_notice))

    def answer(i: int) -> ButtonAction:
        return ButtonAction(Kind.ANSWER, conv.id or 0, conv.seq, i)

    if q.kind == "choice":
        for i, option in enumerate(q.options):
            b.row(_btn(option.label, answer(i)))
    elif q.kind == "ward":
        for i in range(0, len(wards), 2):
            b.row(*(_btn(w, answer(j)) for j, w in enumerate(wards[i : i + 2], start=i)))
    nav: list[Button] = []
    if conv.history:
        nav.append(_btn("⬅ Back", ButtonAction(Kind.BACK, conv.id, conv.seq)))
    if q.optional:
        nav.append(_btn("Skip", ButtonAction(Kind.SKIP, conv.id, conv.seq)))
    nav.append(_btn("✖ Cancel", ButtonAction(Kind.CANCEL, conv.id, conv.seq)))
    b.row(*nav)
    return b.build()


def _answers_lines(b: MessageBuilder, form: FormDefinition, answers: dict[str, str]) -> None:
    for q in form.visible_questions(answers):
        if q.id in answers:
            b.line(bold(f"{q.label}: "), form.display_value(q, answers[q.id]))


def review_message(conv: Conversation, form: FormDefinition, note: str = "") -> OutgoingMessage:
    """The review screen: every answer, then Submit / Edit / Add another / Back / Cancel."""
    assert conv.id is not None
    b = MessageBuilder()
    if note:
        b.line(italic(note))
    count = len(conv.tensions) + 1
    b.line(bold(f"Please check tension {count}" if count > 1 else "Please check your report"))
    _answers_lines(b, form, conv.draft)
    if conv.tensions:
        b.blank().line(
            f"Also in this return: {len(conv.tensions)} earlier tension(s), ready to send."
        )
    submit = "✅ Submit all" if conv.tensions else "✅ Submit"
    b.row(_btn(submit, ButtonAction(Kind.REVIEW_SUBMIT, conv.id, conv.seq)))
    b.row(
        _btn("✏️ Edit an answer", ButtonAction(Kind.REVIEW_EDIT, conv.id, conv.seq)),
        _btn("➕ Add another tension", ButtonAction(Kind.ADD_ANOTHER, conv.id, conv.seq)),
    )
    b.row(
        _btn("⬅ Back", ButtonAction(Kind.BACK, conv.id, conv.seq)),
        _btn("✖ Cancel", ButtonAction(Kind.CANCEL, conv.id, conv.seq)),
    )
    return b.build()


def edit_menu(conv: Conversation, form: FormDefinition) -> OutgoingMessage:
    """Which answer to change."""
    assert conv.id is not None
    b = MessageBuilder().line(bold("Which answer do you want to change?"))
    for q in form.visible_questions(conv.draft):
        b.row(_btn(q.label, ButtonAction(Kind.EDIT_FIELD, conv.id, conv.seq, form.index(q.id))))
    b.row(_btn("⬅ Back to the review", ButtonAction(Kind.BACK, conv.id, conv.seq)))
    return b.build()


def submitted(reports: Sequence[Report], form: FormDefinition) -> OutgoingMessage:
    """Thanks, with the reference of each report."""
    category = form.question("category")
    b = MessageBuilder().line(
        bold(
            "Thank you: your report has been submitted."
            if len(reports) == 1
            else f"Thank you: your {len(reports)} reports have been submitted."
        )
    )
    for r in reports:
        b.line(code(r.reference), f"  {r.ward} · {form.display_value(category, r.category)}")
    b.line(
        "Keep the reference: it is in every message we send you about the report, and you will "
        "be told each time its status changes. /status shows your reports."
    )
    b.blank().line(italic(form.emergency_notice))
    return b.build()


def cancelled(conv: Conversation) -> OutgoingMessage:
    """Confirmation of /cancel or the Cancel button."""
    b = MessageBuilder().line("Cancelled. Nothing was sent.")
    if conv.flow == "monthly" and conv.campaign_id is not None:
        b.line("You can still answer this month's return: tap a button below, or send /return.")
        b.row(_btn("Report a tension", ButtonAction(Kind.START, conv.campaign_id)))
        b.row(_btn("Nothing to report this time", ButtonAction(Kind.NIL, conv.campaign_id)))
    else:
        b.line("Send /report whenever you want to report a tension.")
    return b.build()


def too_long(length: int, limit: int) -> str:
    """Over-long text."""
    return (
        f"That message is {length:,} characters long; the limit here is {limit:,}. "
        "Please shorten it and send it again."
    )


def status_message(
    open_returns: Sequence[tuple[Campaign, str]],
    reports: Sequence[Report],
    form: FormDefinition,
    tz: ZoneInfo,
    states: dict[str, str] | None = None,
) -> OutgoingMessage:
    """``/status``: open returns and my recent reports, with where each stands."""
    labels = {
        "queued": "not answered yet", "sent": "not answered yet", "uncertain": "not answered yet",
        "responded": "answered, thank you", "nil": "nil return, thank you",
        "unreachable": "not answered yet",
    }  # fmt: skip
    b = MessageBuilder()
    if open_returns:
        b.line(bold("Open returns"))
        for campaign, status in open_returns:
            b.line(
                f"{campaign.title}: {labels.get(status, status)}; closes "
                f"{local_time(campaign.closes_at, tz)}"
            )
    else:
        b.line("No return is open for you at the moment.")
    category = form.question("category")
    if reports:
        b.blank().line(bold("Your reports"))
        for r in reports:
            when = r.created_at.astimezone(tz).strftime("%d %b %Y")
            b.line(
                code(r.reference),
                f"  {when} · {r.ward} · {form.display_value(category, r.category)}",
            )
            b.line("    ", italic((states or {}).get(r.reference, r.status)))
    else:
        b.blank().line("You have not submitted any reports yet.")
    return b.build()


def linked_welcome(name: str, partnership: str, form: FormDefinition) -> OutgoingMessage:
    """After a successful /start <token>."""
    who = name.strip() or "there"
    b = MessageBuilder().line(bold(f"Welcome, {who}. You are now connected to the {partnership}."))
    b.line(
        "Each month you will get the community tension return here. "
        "You can also report an urgent tension at any time with /report."
    )
    b.blank().line(italic(form.emergency_notice))
    return b.build()


def account_moved(partnership: str, contact: str) -> OutgoingMessage:
    """To the old chat of a person whose account was re-linked (``invites --relink``)."""
    b = MessageBuilder().line(bold(f"Your {partnership} account has been moved to another chat."))
    b.line(
        "This chat will get no more returns or messages from the bot. If you did not ask for "
        f"this, please contact {contact} straight away."
    )
    return b.build()


def period_title(kind: str, period: str, partnership: str) -> str:
    """A campaign title."""
    if kind == "monthly":
        return f"{partnership} tension return for {period_label(period)}"
    return f"{partnership} extra tension return ({period_label(period)})"
