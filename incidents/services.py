"""Every write to the incident domain, one transaction each.

Each service locks the row it changes, checks the actor's permission (`permissions.py`),
validates, writes, records one timeline event per change (`events.py`) and queues what
those events imply (`recipients.announce` for mail, `webhooks.announce` for webhook
endpoints), all in the same transaction: a failure leaves
nothing behind, and a change that commits always has its notifications queued.

They raise `PermissionDenied` (not allowed: 403), `ValidationError` (bad input: 400 / a
form error) or its subclass `WorkflowError` (not possible in the incident's current state:
409 in the API, a form error on the web). Web views, API viewsets, admin actions and
management commands call these; none of them writes incidents directly.
"""

import contextvars
import copy
import functools
import hashlib
import logging
import secrets
from datetime import datetime

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from . import attachments, events, permissions, recipients, replies, sla, text, webhooks
from .models import (
    DEFAULT_CATEGORY,
    DEFAULT_TEAM,
    NO_DEADLINE,
    TRANSITIONS,
    Attachment,
    Category,
    InboundMessage,
    Incident,
    IncidentEvent,
    Response,
    Severity,
    Status,
    Team,
    Visibility,
    attachment_storage,
)
from .tasks import check_sla


class WorkflowError(ValidationError):
    """A well-formed request that the incident's current state refuses (a move the
    workflow does not have, a response to a closed incident). The API answers 409."""


# Names of the files the current service call stored, removed if it fails (see
# `_stored_files_removed_on_failure`).
_stored_names: contextvars.ContextVar[list | None] = contextvars.ContextVar("stored_attachment_names", default=None)
logger = logging.getLogger(__name__)


def _stored_files_removed_on_failure(service):
    """Storage is not part of the database transaction: a file written by a service whose
    transaction then rolls back (a refused third file, a database error, a crash of the
    request) would stay behind without a row. The outermost service call remembers what it
    stored and deletes it if it raises; `manage.py prune_attachments` removes what a killed
    process could not."""

    @functools.wraps(service)
    def wrapper(*args, **kwargs):
        if _stored_names.get() is not None:  # inside another such service: it cleans up
            return service(*args, **kwargs)
        token = _stored_names.set([])
        try:
            return service(*args, **kwargs)
        except BaseException:
            for name in _stored_names.get():
                try:
                    attachment_storage().delete(name)
                except Exception:  # the cleanup must not hide the error that caused it
                    logger.exception("Could not delete the stored file %s", name)
            raise
        finally:
            _stored_names.reset(token)

    return wrapper


# `update_incident(reporter=...)` distinguishes "leave the reporter alone" from "nobody".
UNCHANGED = object()


def _locked(incident: Incident) -> Incident:
    """Re-read the row under a lock so two concurrent changes apply one after the other,
    each checked against the state the other left."""
    return Incident.objects.select_for_update().get(pk=incident.pk)


def _require(allowed: bool, message: str) -> None:
    if not allowed:
        raise PermissionDenied(message)


def _record(*new_events: IncidentEvent) -> None:
    for event in new_events:
        event.save()
        recipients.announce(event)
        webhooks.announce(event)


def _schedule_escalation(incident: Incident, was: datetime | None = None) -> None:
    """Queue the SLA check for the incident's next unescalated due time, in the caller's
    transaction, when that time changed (`was`: what it was before this change). A task
    left for an earlier time finds nothing to do and ends (`escalate_breaches`)."""
    if incident.sla_escalate_at != was and incident.sla_escalate_at != NO_DEADLINE:
        check_sla.using(run_after=incident.sla_escalate_at).enqueue(incident.pk)


def _escalate_due_clocks(incident: Incident, now: datetime) -> list[IncidentEvent]:
    """Mark each overdue, unescalated clock escalated, and return its timeline event (whose
    announcement mails the team's leads). Called under the row's lock; the conditional
    update makes it once per clock even where the lock is not one (SQLite)."""
    breaches = []
    for clock in sla.overdue_clocks(incident, now):
        field = f"{clock}_breached_at"
        if Incident.objects.filter(pk=incident.pk, **{f"{field}__isnull": True}).update(**{field: now}):
            setattr(incident, field, now)
            breaches.append(
                events.sla_breached(incident, clock=clock, due_at=getattr(incident, f"{clock}_due_at"), at=now)
            )
    sla.sync(incident)
    return breaches


def default_category() -> Category:
    """The category of a report that names none: `general`, else the first active one.
    Should staff have deactivated every category, `general` (and its `response` team)
    comes back rather than a report being refused: a report is never lost to set-up."""
    active = Category.objects.active().select_related("team")
    category = active.filter(slug=DEFAULT_CATEGORY).first() or active.first()
    if category is None:
        team, _ = Team.objects.get_or_create(slug=DEFAULT_TEAM, defaults={"name": "Response team", "sees_all": True})
        category, _ = Category.objects.update_or_create(
            slug=DEFAULT_CATEGORY, defaults={"active": True}, create_defaults={"name": "General", "team": team}
        )
    return category


@_stored_files_removed_on_failure
@transaction.atomic
def report_incident(
    *,
    reporter,
    title: str,
    description: str,
    severity: str = Severity.MEDIUM,
    visibility: str = Visibility.PUBLIC,
    category: Category | None = None,
    files=(),
) -> Incident:
    """File a new incident as `reporter` (any signed-in user); status starts at Reported,
    and the incident goes to its category's team (no category: the default one). `files`
    (uploaded files) become its attachments, checked before anything is written."""
    _require(getattr(reporter, "is_authenticated", False), "Sign in to report an incident.")
    prepared = _prepare_files(files)
    category = category or default_category()
    if not category.active:
        raise ValidationError({"category": "Choose one of the listed categories."})
    incident = Incident(
        reporter=reporter,
        category=category,
        team=category.team,
        title=text.single_line(title or "", field="title"),
        description=text.multiline(description or "", field="description"),
        severity=severity or Severity.MEDIUM,
        visibility=visibility or Visibility.PUBLIC,
    )
    incident.full_clean()
    sla.start_clocks(incident)
    incident.save()
    attached = _store_attachments(incident, prepared, uploader=reporter)
    _record(events.reported(incident, actor=reporter), *attached)
    _schedule_escalation(incident)
    return incident


@transaction.atomic
def update_incident(
    *,
    incident: Incident,
    actor,
    title: str | None = None,
    description: str | None = None,
    visibility: str | None = None,
    severity: str | None = None,
    status: str | None = None,
    reporter=UNCHANGED,
    team: Team | None = None,
    category: Category | None = None,
    assignee=UNCHANGED,
) -> Incident:
    """Apply a set of changes together, under one lock, or none of them.

    `title`, `description` (the reporter while Reported, or staff), `visibility` and
    `reporter` (staff), `severity`, `team`, `category` and `assignee` (those who work the
    incident: `permissions.can_work`), `status` (along the workflow, as
    `permissions.allowed_statuses` says). A move to another team clears the assignee
    unless they are a member there; an assignee must be a member of the incident's team
    (after any move) or staff. Every decision is taken against the row as it is
    under the lock, so concurrent updates each see what the one before them left. A field
    given with its current value changes nothing; one event per field that changed.
    Returns the incident as saved.
    """
    incident = _locked(incident)
    _require(permissions.can_view(actor, incident), "You may not change this incident.")
    # Rights are judged on the incident as found under the lock, whatever this same call
    # changes first (a member of its team may re-grade it while moving it away).
    found = copy.copy(incident)
    new_events: list[IncidentEvent] = []

    edits = {"title": title, "description": description, "visibility": visibility}
    if any(value is not None for value in edits.values()):
        new_events += _edit(incident, found, actor, **edits)
    if reporter is not UNCHANGED and reporter != incident.reporter:
        _require(actor.is_staff, "Only staff may change who reported an incident.")
        new_events.append(events.reporter_changed(incident, actor=actor, old=incident.reporter, new=reporter))
        incident.reporter = reporter
    # As for severity, asking for one of these needs the right to change it, even when
    # the value asked for is the current one.
    if category is not None:
        new_events += _change_category(incident, found, actor, category)
    if team is not None:
        new_events += _change_team(incident, found, actor, team)
    if assignee is not UNCHANGED:
        new_events += _assign(incident, found, actor, assignee)
    if severity is not None:
        new_events += _change_severity(incident, found, actor, severity)
    regraded = (incident.severity, incident.team_id) != (found.severity, found.team_id)
    if regraded:
        # Before any status move of this same call, so that a reopening restarts the
        # resolve clock with the new target.
        sla.recompute(incident)
    if status is not None and status != incident.status:
        new_events += _change_status(incident, found, actor, status)

    if new_events:
        if regraded:
            # A re-grade that makes a clock overdue escalates it at once.
            new_events += _escalate_due_clocks(incident, timezone.now())
        # Field values only: the reporter may be a deleted account (null), and the row's
        # uniqueness and constraints are the database's to enforce.
        incident.full_clean(exclude=["reporter"], validate_unique=False, validate_constraints=False)
        incident.save()
        _record(*new_events)
        _schedule_escalation(incident, was=found.sla_escalate_at)
    return incident


def _edit(incident: Incident, found: Incident, actor, **values) -> list[IncidentEvent]:
    _require(permissions.can_edit(actor, found), "You may not edit this incident.")
    visibility = values["visibility"]
    if visibility is not None and visibility != incident.visibility:
        _require(permissions.can_change_visibility(actor, found), "You may not change who can see this incident.")
    if values["title"] is not None:
        values["title"] = text.single_line(values["title"], field="title")
    if values["description"] is not None:
        values["description"] = text.multiline(values["description"], field="description")
    changed = []
    for field, value in values.items():
        old = getattr(incident, field)
        if value is not None and value != old:
            setattr(incident, field, value)
            changed.append(events.edited(incident, actor=actor, field=field, old=old, new=value))
    return changed


def _change_category(incident: Incident, found: Incident, actor, category: Category) -> list[IncidentEvent]:
    _require(permissions.can_work(actor, found), "You may not change the category of this incident.")
    if category.pk == incident.category_id:
        return []
    if not category.active:
        raise ValidationError({"category": "Choose one of the listed categories."})
    old = incident.category
    incident.category = category
    return [events.category_changed(incident, actor=actor, old=old, new=category)]


def _change_team(incident: Incident, found: Incident, actor, team: Team) -> list[IncidentEvent]:
    _require(permissions.can_change_team(actor, found), "You may not move this incident to another team.")
    if team.pk == incident.team_id:
        return []
    old = incident.team
    incident.team = team
    changed = [events.team_changed(incident, actor=actor, old=old, new=team)]
    assignee = incident.assignee
    if assignee is not None and not team.members.filter(pk=assignee.pk).exists():
        incident.assignee = None
        changed.append(events.assignment_changed(incident, actor=actor, old=assignee, new=None))
    return changed


def _assign(incident: Incident, found: Incident, actor, assignee) -> list[IncidentEvent]:
    _require(permissions.can_assign(actor, found), "You may not assign this incident.")
    if getattr(assignee, "pk", None) == incident.assignee_id:
        return []
    if assignee is not None and not permissions.can_be_assigned(assignee, incident.team_id):
        raise ValidationError(
            {"assignee": f"{assignee.username} is not a member of {incident.team.name}: assign a team member."}
        )
    old = incident.assignee
    incident.assignee = assignee
    return [events.assignment_changed(incident, actor=actor, old=old, new=assignee)]


def _change_severity(incident: Incident, found: Incident, actor, severity: str) -> list[IncidentEvent]:
    _require(permissions.can_change_severity(actor, found), "You may not change the severity of this incident.")
    if severity not in Severity.values:
        raise ValidationError({"severity": f"“{severity}” is not a severity."})
    old = incident.severity
    if severity == old:
        return []
    incident.severity = severity
    return [events.severity_changed(incident, actor=actor, old=old, new=severity)]


def _change_status(incident: Incident, found: Incident, actor, status: str) -> list[IncidentEvent]:
    """Move along the workflow (`models.TRANSITIONS`), stamping acknowledged/resolved/closed."""
    old = incident.status
    if status not in Status.values:
        raise ValidationError({"status": f"“{status}” is not a status."})
    if status == old:
        raise WorkflowError({"status": f"The incident is already {old}."})
    if status not in permissions.allowed_statuses(actor, found):
        if status not in TRANSITIONS[old]:
            raise WorkflowError({"status": f"An incident cannot move from {old} to {status}."})
        raise PermissionDenied(f"You may not move this incident from {old} to {status}.")
    now = timezone.now()
    incident.status = status
    if status in (Status.ACKNOWLEDGED, Status.IN_PROGRESS, Status.RESOLVED) and incident.acknowledged_at is None:
        incident.acknowledged_at = now
    if status == Status.RESOLVED:
        incident.resolved_at = now
    elif status == Status.IN_PROGRESS and old == Status.RESOLVED:
        incident.resolved_at = None  # reopened: time to resolve counts again
    if status == Status.CLOSED:
        incident.closed_at = now
    met_late = sla.status_moved(incident, old=old, new=status, at=now)
    return [
        events.status_changed(incident, actor=actor, old=old, new=status, at=now),
        *(
            events.sla_breached(incident, clock=clock, due_at=getattr(incident, f"{clock}_due_at"), at=now)
            for clock in met_late
        ),
    ]


def assign(*, incident: Incident, actor, assignee) -> Incident:
    """Give the incident to `assignee` (None: to nobody); "assign to me" is assignee=actor."""
    return update_incident(incident=incident, actor=actor, assignee=assignee)


def move_to_team(*, incident: Incident, actor, team: Team) -> Incident:
    return update_incident(incident=incident, actor=actor, team=team)


def edit_incident(*, incident: Incident, actor, title=None, description=None, visibility=None) -> Incident:
    """Change title, description or visibility (the edit page)."""
    return update_incident(incident=incident, actor=actor, title=title, description=description, visibility=visibility)


def change_severity(*, incident: Incident, actor, severity: str) -> Incident:
    """Re-grade an incident that is not closed (responders and staff)."""
    return update_incident(incident=incident, actor=actor, severity=severity)


@transaction.atomic
def change_status(*, incident: Incident, actor, status: str) -> Incident:
    """One workflow move (a status button, an admin bulk action). Unlike a PATCH, asking
    for the status the incident already has is refused: the button is stale."""
    incident = _locked(incident)
    if status == incident.status:
        raise WorkflowError({"status": f"The incident is already {status}."})
    return update_incident(incident=incident, actor=actor, status=status)


@_stored_files_removed_on_failure
@transaction.atomic
def add_response(*, incident: Incident, author, description: str, files=()) -> Response:
    """Add `author`'s response to an incident they can see (not a closed one), with
    `files` (uploaded files) as its attachments."""
    prepared = _prepare_files(files)
    incident = _locked(incident)
    _require(permissions.can_view(author, incident), "You may not respond to this incident.")
    if incident.status == Status.CLOSED:
        raise WorkflowError({"description": "This incident is closed; it takes no more responses."})
    response = Response(
        incident=incident, author=author, description=text.multiline(description or "", field="description")
    )
    response.full_clean()
    response.save()
    # Touch updated_at so "recently active" sorts see the new response.
    Incident.objects.filter(pk=incident.pk).update(updated_at=timezone.now())
    attached = _store_attachments(incident, prepared, uploader=author, response=response)
    _record(events.responded(response), *attached)
    return response


@transaction.atomic
def escalate_breaches(*, incident_pk: int) -> list[str]:
    """Escalate every SLA clock of the incident that is past due, unmet and not escalated
    yet: one `SLA breached` event each (the team's leads are mailed), exactly once per
    clock whichever worker, task or sweep gets there first. Returns the clocks escalated
    (none: nothing was due, or someone else did it). The system acts: no actor."""
    incident = Incident.objects.select_for_update().filter(pk=incident_pk).first()
    if incident is None:
        return []
    was = incident.sla_escalate_at
    breaches = _escalate_due_clocks(incident, timezone.now())
    if incident.sla_escalate_at != was:
        Incident.objects.filter(pk=incident.pk).update(sla_escalate_at=incident.sla_escalate_at)
    _record(*breaches)
    _schedule_escalation(incident, was=was)
    return [event.field for event in breaches]


def escalate_overdue(limit: int = 500) -> int:
    """The sweep every worker runs (settings.WORKER_SWEEPS): escalate every clock past due
    and not yet escalated, whatever happened to its task. Reads the `sla_escalate_at`
    index from its start, so its cost is the number of overdue incidents, not the number
    of open ones; `limit` a sweep (the next, 30 s later, takes the rest). Returns how many
    incidents it escalated."""
    now = timezone.now()
    due = Incident.objects.filter(sla_escalate_at__lte=now).order_by("sla_escalate_at").values_list("pk", flat=True)
    return sum(bool(escalate_breaches(incident_pk=pk)) for pk in list(due[:limit]))


def _prepare_files(files, *, field: str = "files") -> list:
    """Every uploaded file checked and made ready to store, or the first refusal
    (`attachments.AttachmentTooLarge`, `UnsupportedAttachment`, `ValidationError`)."""
    files = list(files or ())
    if len(files) > settings.ATTACHMENT_MAX_FILES:
        raise ValidationError({field: f"Attach at most {settings.ATTACHMENT_MAX_FILES} files."}, code="too_many")
    for upload in files:  # the cheap check for all of them before the costly one
        attachments.check_size(upload, field=field)
    return [attachments.prepare(upload, field=field) for upload in files]


def _save_file(content: bytes, suffix: str = "") -> str:
    """Store `content` under a random name (never the uploaded one) and remember it."""
    name = attachment_storage().save(f"attachments/{secrets.token_hex(16)}{suffix}", ContentFile(content))
    stored = _stored_names.get()
    if stored is not None:
        stored.append(name)
    return name


def _store_attachments(incident: Incident, prepared: list, *, uploader, response=None) -> list[IncidentEvent]:
    """Store each prepared file with its row; returns their (unsaved) timeline events."""
    new_events = []
    for item in prepared:
        attachment = Attachment(
            incident=incident,
            response=response,
            uploaded_by=uploader,
            filename=item.filename,
            content_type=item.content_type,
            size=item.size,
            sha256=item.sha256,
        )
        attachment.file.name = _save_file(item.content)
        if item.thumbnail is not None:
            attachment.thumbnail.name = _save_file(item.thumbnail, "-thumb")
        attachment.save()
        new_events.append(events.attached(attachment))
    return new_events


@_stored_files_removed_on_failure
@transaction.atomic
def add_attachment(*, incident: Incident, uploader, file, response_id: int | None = None) -> Attachment:
    """Attach one uploaded file to an incident `uploader` may respond to (not a closed
    one), and to their response `response_id` of it if given. Each (incident, response,
    uploader) takes at most ATTACHMENT_MAX_FILES files."""
    prepared = _prepare_files([file], field="file")
    incident = _locked(incident)
    _require(permissions.can_view(uploader, incident), "You may not attach files to this incident.")
    if incident.status == Status.CLOSED:
        raise WorkflowError({"file": "This incident is closed; it takes no more files."})
    response = None
    if response_id is not None:
        response = Response.objects.filter(pk=response_id, incident=incident).first()
        if response is None:
            raise ValidationError({"response_id": "This incident has no response with that id."})
        _require(response.author_id == uploader.pk, "Only its author may attach files to a response.")
    already = Attachment.objects.filter(incident=incident, response=response, uploaded_by=uploader).count()
    if already >= settings.ATTACHMENT_MAX_FILES:
        raise ValidationError({"file": f"You attached {already} files here already, the most there may be."})
    (event,) = _store_attachments(incident, prepared, uploader=uploader, response=response)
    _record(event)
    return event.attachment


@_stored_files_removed_on_failure
@transaction.atomic
def respond_by_mail(*, raw: bytes, source: str, recipient: str | None = None) -> InboundMessage | None:
    """Turn one received e-mail into a response, or refuse it (`replies.classify`), and
    record it as an `InboundMessage`; `None` when that message was handled already.

    Exactly once per message, whatever the number of ingesters: the record, keyed by the
    message, is inserted before the response and in the same transaction, so a second
    ingester's insert waits for the first and then fails on the unique key. A
    refusal creates nothing but its record, and mails the sender (only an active user, never
    a robot) one explanation an hour at most, through the outbox."""
    try:
        message = replies.parse(raw)
        key, message_id = replies.message_key(message, raw)
        subject = replies.header(message, "Subject")[:255]
        sender = replies.sender_address(message)[:254]
    except Exception as error:  # hostile bytes: a record, never a crash
        message, key, message_id, subject, sender = None, hashlib.sha256(b"raw:" + raw).hexdigest(), "", "", ""
        logger.info("An inbound message could not be parsed: %s", error)
    # Decided before the record is inserted: its unique key is held (and a second
    # ingester of the same message waits) only while the response is written.
    verdict = _verdict(message, raw, recipient)
    record = InboundMessage(
        key=key,
        message_id=message_id,
        source=source,
        sender=sender,
        subject=subject,
        status=InboundMessage.Status.REFUSED,
        reason=verdict.reason or "",
        detail=verdict.detail,
    )
    try:
        with transaction.atomic():
            record.save()
    except IntegrityError:
        return None
    # Linked only now, after the claim: on InnoDB a row that names a user takes a shared
    # lock on that user's row, which must not be held before `reply_refused` locks it.
    record.incident, record.user = verdict.incident, verdict.user
    if verdict.reason is None:
        stored = len(_stored_names.get())
        try:
            response = add_response(
                incident=verdict.incident, author=verdict.user, description=verdict.text, files=verdict.files
            )
        except (PermissionDenied, ValidationError) as error:
            # Its savepoint is rolled back; so are any files it stored (this call goes on).
            _delete_stored_files(since=stored)
            record.reason, record.detail = _refusal(error)
        else:
            record.status, record.response = InboundMessage.Status.ACCEPTED, response
    if record.status == InboundMessage.Status.REFUSED and recipients.reply_refused(record):
        record.bounced_at = timezone.now()
    record.save()
    return record


def _refusal(error: Exception) -> tuple[str, str]:
    """The (reason, detail) of a reply `add_response` refused (checked again under the lock)."""
    if isinstance(error, PermissionDenied):
        return InboundMessage.Reason.NOT_ALLOWED, "The sender may not respond."
    if isinstance(error, WorkflowError):
        return InboundMessage.Reason.CLOSED, "The incident is closed."
    return InboundMessage.Reason.INVALID, " ".join(error.messages)


def _delete_stored_files(*, since: int) -> None:
    names = _stored_names.get()
    for name in names[since:]:
        try:
            attachment_storage().delete(name)
        except Exception:  # the refusal is recorded either way; prune_attachments retries
            logger.exception("Could not delete the stored file %s", name)
    del names[since:]


def _verdict(message, raw: bytes, recipient: str | None) -> replies.Verdict:
    if message is None:
        return replies.Verdict(InboundMessage.Reason.UNREADABLE, "Not a readable e-mail message.")
    if len(raw) > replies.max_message_bytes():
        return replies.Verdict(InboundMessage.Reason.INVALID, f"Larger than {replies.max_message_bytes()} bytes.")
    try:
        return replies.classify(message, recipient=recipient)
    except Exception as error:  # a part the parser cannot decode: refused, recorded
        logger.info("An inbound message could not be read: %s", error)
        return replies.Verdict(InboundMessage.Reason.UNREADABLE, "A part of the message could not be decoded.")
