"""The whole site's authorization matrix: every URL of the web pages, the admin and the API
(from irms_site/urls.py, accounts/urls.py, incidents/urls.py and incidents/api/urls.py), for
every kind of user, on a public and on a private Reported incident of team A, with every
method the URL accepts (and PUT/DELETE on the API). The API is asked with a token and, as a
browser asks it, with a session.

The incidents (`team_a_public_incident`, `team_a_private_incident`, root conftest.py) were
reported by `reporter` in team A's category and assigned to `assignee`, who has left team A
since. The roles, one column each:
    anonymous   not signed in
    owner       the reporter (`reporter`), in no team
    other       signed in, in no team (`other`)
    team_a      a member of the incident's team (`team_a_member`)
    team_b      a member of another team that does not see everything (`team_b_member`)
    sees_all    a member of the `response` team, which sees and works every incident (`responder`)
    assignee    the incident's assignee, no longer a member of its team (`assignee`)
    staff       staff without model permissions, in no team (`staff`)

Each cell is written down, not computed from `permissions.py`: the table is the
specification the code is checked against (the issue's words: a private incident is for its
reporter, its assignee, its team, sees_all teams and staff, and a 404 for anyone else; the
incident's team, sees_all teams and staff work it; a member of another team may respond to
a public incident but not work it; only a member of the incident's team, or staff, may be
its assignee). Whenever the answer refuses, and whenever the method is GET, nothing
changed: the incident row, the number of incidents, responses, timeline events, users,
tokens, queued e-mails and queued tasks are as they were. Whenever a change is accepted, it
happened, and the timeline names who made it.

How a refusal looks:
    web, anonymous        302 to /accounts/login/?next=<path>            LOGIN
    admin, not staff      302 to /admin/login/?next=<path>                ADMIN_LOGIN
                          (and anonymous visitors to the admin's index page)
    signed in, sign-in or register page: 302 away, nothing done           AWAY
    API, anonymous        401, JSON with "error": "Unauthorized access"
    unusable link         400, a page saying why (an e-mail change confirmation)
    not an assignee       400, with the reason (web: the page; API: JSON)
    not visible           404 (web and API; never 403, which would confirm it exists)
    visible, not allowed  403
    method not accepted   405 (API)
"""

import json
import re
import uuid
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.urls import get_resolver, resolve
from django_tasks_db.models import DBTaskResult
from rest_framework.authtoken.models import Token

from accounts.models import User
from incidents import services
from incidents.models import (
    Attachment,
    EventKind,
    Incident,
    IncidentEvent,
    Response,
    Severity,
    Status,
    Visibility,
    WebhookEndpoint,
)
from incidents.tests import samples
from notifications.models import OutgoingEmail, WebhookDelivery

PASSWORD = "correct-horse-battery-42"  # the root conftest's password for every user
NEW_PASSWORD = "a-sturdy-new-passphrase-77"

LOGIN = "login"
ADMIN_LOGIN = "admin-login"
AWAY = "away"
REFUSED = {LOGIN, ADMIN_LOGIN, AWAY, 400, 401, 403, 404, 405}

ROLES = ("anonymous", "owner", "other", "team_a", "team_b", "sees_all", "assignee", "staff")
ROLE_FIXTURE = {
    "owner": "reporter",
    "other": "other",
    "team_a": "team_a_member",
    "team_b": "team_b_member",
    "sees_all": "responder",
    "assignee": "assignee",
    "staff": "staff",
}

PUBLIC, PRIVATE, ANY = "public", "private", "any"
TOKEN, SESSION = "token", "session"
# API answers that are not JSON: the schema (YAML) and the docs page (HTML).
NOT_JSON = ("/api/schema", "/api/docs")
# API answers that are the stored bytes of an attachment (when the caller may see them).
DOWNLOADS = ("/file", "/thumbnail")


def both(*cells):
    """The same answers on the public and the private incident."""
    return {PUBLIC: cells, PRIVATE: cells}


def once(*cells):
    """A URL that names no incident: asked once per role."""
    return {ANY: cells}


# A photo to upload, made afresh for each request that names it (see `fill`).
PHOTO = "{photo}"

# Columns:  anonymous  owner  other  team_a  team_b  sees_all  assignee  staff
# fmt: off
MATRIX = [
    # --- Site pages ---------------------------------------------------------------------------
    ("home", "GET", "/", None, once(200, 200, 200, 200, 200, 200, 200, 200)),
    ("healthz", "GET", "/healthz", None, once(200, 200, 200, 200, 200, 200, 200, 200)),
    ("readyz", "GET", "/readyz", None, once(200, 200, 200, 200, 200, 200, 200, 200)),
    ("favicon", "GET", "/favicon.ico", None, once(301, 301, 301, 301, 301, 301, 301, 301)),
    ("dashboard", "GET", "/dashboard/", None, once(LOGIN, 200, 200, 200, 200, 200, 200, 200)),
    # The original app's paths: anyone is redirected (signing in, if needed, happens there).
    ("old-register", "GET", "/register", None, once(301, 301, 301, 301, 301, 301, 301, 301)),
    ("old-login", "GET", "/login", None, once(301, 301, 301, 301, 301, 301, 301, 301)),
    ("old-logout", "GET", "/logout", None, once(301, 301, 301, 301, 301, 301, 301, 301)),
    ("old-forgot-password", "GET", "/forgot_password", None, once(301, 301, 301, 301, 301, 301, 301, 301)),
    ("old-reset-password", "GET", "/reset_password/abc", None, once(301, 301, 301, 301, 301, 301, 301, 301)),
    ("old-dashboard", "GET", "/dashboard", None, once(301, 301, 301, 301, 301, 301, 301, 301)),
    ("old-incident-report", "GET", "/incident-report", None, once(301, 301, 301, 301, 301, 301, 301, 301)),
    ("old-public-incidents", "GET", "/public_incidents", None, once(301, 301, 301, 301, 301, 301, 301, 301)),
    ("old-response", "GET", "/response", None, once(301, 301, 301, 301, 301, 301, 301, 301)),
    # --- Accounts -----------------------------------------------------------------------------
    ("register-form", "GET", "/accounts/register/", None, once(200, AWAY, AWAY, AWAY, AWAY, AWAY, AWAY, AWAY)),
    ("register", "POST", "/accounts/register/",
     {"username": "newbie", "email": "newbie@example.com", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
     once(302, AWAY, AWAY, AWAY, AWAY, AWAY, AWAY, AWAY)),
    ("login-form", "GET", "/accounts/login/", None, once(200, AWAY, AWAY, AWAY, AWAY, AWAY, AWAY, AWAY)),
    ("login", "POST", "/accounts/login/", {"username": "alice", "password": PASSWORD},
     once(302, AWAY, AWAY, AWAY, AWAY, AWAY, AWAY, AWAY)),
    ("logout-confirm", "GET", "/accounts/logout/", None, once(200, 200, 200, 200, 200, 200, 200, 200)),
    ("logout", "POST", "/accounts/logout/", {}, once(302, 302, 302, 302, 302, 302, 302, 302)),
    ("profile", "GET", "/accounts/profile/", None, once(LOGIN, 200, 200, 200, 200, 200, 200, 200)),
    ("profile-email", "POST", "/accounts/profile/", {"email": "changed@example.com", "current_password": PASSWORD},
     once(LOGIN, 302, 302, 302, 302, 302, 302, 302)),
    # A confirmation link that is not one: refused with a page saying why, nothing changed.
    ("email-change-confirm-form", "GET", "/accounts/profile/email/bad-token/", None,
     once(LOGIN, 400, 400, 400, 400, 400, 400, 400)),
    ("email-change-confirm", "POST", "/accounts/profile/email/bad-token/", {},
     once(LOGIN, 400, 400, 400, 400, 400, 400, 400)),
    ("profile-token", "POST", "/accounts/profile/token/", {"action": "create"},
     once(LOGIN, 302, 302, 302, 302, 302, 302, 302)),
    ("profile-notifications", "POST", "/accounts/profile/notifications/", {"email_on_response": "on"},
     once(LOGIN, 302, 302, 302, 302, 302, 302, 302)),
    ("password-change-form", "GET", "/accounts/password_change/", None,
     once(LOGIN, 200, 200, 200, 200, 200, 200, 200)),
    ("password-change", "POST", "/accounts/password_change/",
     {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
     once(LOGIN, 302, 302, 302, 302, 302, 302, 302)),
    ("password-reset-form", "GET", "/accounts/password_reset/", None, once(200, 200, 200, 200, 200, 200, 200, 200)),
    ("password-reset", "POST", "/accounts/password_reset/", {"email": "alice@example.com"},
     once(302, 302, 302, 302, 302, 302, 302, 302)),
    ("password-reset-done", "GET", "/accounts/password_reset/done/", None,
     once(200, 200, 200, 200, 200, 200, 200, 200)),
    # A link with a bad token shows "this link is invalid" and changes nothing, whatever the method.
    ("password-reset-confirm-form", "GET", "/accounts/reset/MQ/bad-token/", None,
     once(200, 200, 200, 200, 200, 200, 200, 200)),
    ("password-reset-confirm", "POST", "/accounts/reset/MQ/bad-token/",
     {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}, once(200, 200, 200, 200, 200, 200, 200, 200)),
    ("password-reset-complete", "GET", "/accounts/reset/done/", None, once(200, 200, 200, 200, 200, 200, 200, 200)),
    # --- Incident lists and the report form ------------------------------------------------------
    ("queue", "GET", "/incidents/", None, once(LOGIN, 200, 200, 200, 200, 200, 200, 200)),
    ("mine", "GET", "/incidents/mine/", None, once(LOGIN, 200, 200, 200, 200, 200, 200, 200)),
    ("public", "GET", "/incidents/public/", None, once(LOGIN, 200, 200, 200, 200, 200, 200, 200)),
    ("report-form", "GET", "/incidents/new/", None, once(LOGIN, 200, 200, 200, 200, 200, 200, 200)),
    # --- Metrics: team members and staff (over what they may see) ----------------------------------
    ("metrics", "GET", "/metrics/", None, once(LOGIN, 403, 403, 200, 200, 200, 403, 200)),
    ("metrics-csv", "GET", "/metrics/export.csv", None, once(LOGIN, 403, 403, 200, 200, 200, 403, 200)),
    ("api-metrics", "GET", "/api/metrics", None, once(401, 403, 403, 200, 200, 200, 403, 200)),
    ("report", "POST", "/incidents/new/",
     {"category": "{category_a_pk}", "title": "Water on the floor", "description": "Server room.",
      "severity": Severity.HIGH},
     once(LOGIN, 302, 302, 302, 302, 302, 302, 302)),
    # --- One incident's pages ----------------------------------------------------------------------
    ("detail", "GET", "/incidents/{id}/", None, {
        PUBLIC:  (LOGIN, 200, 200, 200, 200, 200, 200, 200),
        PRIVATE: (LOGIN, 200, 404, 200, 404, 200, 200, 200)}),
    # Title and description: the reporter while Reported, and staff.
    ("edit-form", "GET", "/incidents/{id}/edit/", None, {
        PUBLIC:  (LOGIN, 200, 403, 403, 403, 403, 403, 200),
        PRIVATE: (LOGIN, 200, 404, 403, 404, 403, 403, 200)}),
    ("edit", "POST", "/incidents/{id}/edit/", {"title": "Corrected title", "description": "Corrected description."}, {
        PUBLIC:  (LOGIN, 302, 403, 403, 403, 403, 403, 302),
        PRIVATE: (LOGIN, 302, 404, 403, 404, 403, 403, 302)}),
    # Anyone who sees it may respond: a member of another team too, on a public incident.
    ("respond", "POST", "/incidents/{id}/respond/", {"description": "On my way."}, {
        PUBLIC:  (LOGIN, 302, 302, 302, 302, 302, 302, 302),
        PRIVATE: (LOGIN, 302, 404, 302, 404, 302, 302, 302)}),
    # Working it (a status move, severity, assigning, moving): its team, a sees_all team, staff.
    ("acknowledge", "POST", "/incidents/{id}/status/", {"status": Status.ACKNOWLEDGED}, {
        PUBLIC:  (LOGIN, 403, 403, 302, 403, 302, 403, 302),
        PRIVATE: (LOGIN, 403, 404, 302, 404, 302, 403, 302)}),
    # Closing a still-open incident: its reporter and staff, not those who work it.
    ("close", "POST", "/incidents/{id}/status/", {"status": Status.CLOSED}, {
        PUBLIC:  (LOGIN, 302, 403, 403, 403, 403, 403, 302),
        PRIVATE: (LOGIN, 302, 404, 403, 404, 403, 403, 302)}),
    ("severity", "POST", "/incidents/{id}/severity/", {"severity": Severity.CRITICAL}, {
        PUBLIC:  (LOGIN, 403, 403, 302, 403, 302, 403, 302),
        PRIVATE: (LOGIN, 403, 404, 302, 404, 302, 403, 302)}),
    ("unassign", "POST", "/incidents/{id}/assign/", {"assignee": ""}, {
        PUBLIC:  (LOGIN, 403, 403, 302, 403, 302, 403, 302),
        PRIVATE: (LOGIN, 403, 404, 302, 404, 302, 403, 302)}),
    ("assign-member", "POST", "/incidents/{id}/assign/", {"assignee": "{team_a_member}"}, {
        PUBLIC:  (LOGIN, 403, 403, 302, 403, 302, 403, 302),
        PRIVATE: (LOGIN, 403, 404, 302, 404, 302, 403, 302)}),
    # "Assign to me": a member of a sees_all team is not a member of team A, so may assign
    # the incident to others but not own it (400, with the reason); staff may own any.
    ("assign-to-me", "POST", "/incidents/{id}/assign/", {"assignee": "{me}"}, {
        PUBLIC:  (LOGIN, 403, 403, 302, 403, 400, 403, 302),
        PRIVATE: (LOGIN, 403, 404, 302, 404, 400, 403, 302)}),
    # Someone outside team A: those who may assign are told why not (400); the rest, 403/404.
    ("assign-non-member", "POST", "/incidents/{id}/assign/", {"assignee": "{team_b_member}"}, {
        PUBLIC:  (LOGIN, 403, 403, 400, 403, 400, 403, 400),
        PRIVATE: (LOGIN, 403, 404, 400, 404, 400, 403, 400)}),
    ("move-team", "POST", "/incidents/{id}/team/", {"team": "team-b"}, {
        PUBLIC:  (LOGIN, 403, 403, 302, 403, 302, 403, 302),
        PRIVATE: (LOGIN, 403, 404, 302, 404, 302, 403, 302)}),
    # --- Admin (the `staff` fixture is staff without model permissions: the admin refuses) -----
    ("admin-index", "GET", "/admin/", None,
     once(ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 200)),
    ("admin-login-form", "GET", "/admin/login/", None, once(200, 200, 200, 200, 200, 200, 200, AWAY)),
    ("admin-incidents", "GET", "/admin/incidents/incident/", None,
     once(LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 403)),
    ("admin-incidents-action", "POST", "/admin/incidents/incident/",
     {"action": "acknowledge_selected", "_selected_action": "{pk}", "index": "0"},
     both(LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 403)),
    ("admin-incident-change-form", "GET", "/admin/incidents/incident/{pk}/change/", None,
     both(LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 403)),
    ("admin-incident-change", "POST", "/admin/incidents/incident/{pk}/change/",
     {"title": "Changed in the admin", "description": "Changed.", "status": Status.ACKNOWLEDGED,
      "severity": Severity.LOW, "visibility": "public"},
     both(LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 403)),
    ("admin-teams", "GET", "/admin/incidents/team/", None,
     once(LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 403)),
    ("admin-categories", "GET", "/admin/incidents/category/", None,
     once(LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 403)),
    ("admin-emails", "GET", "/admin/notifications/outgoingemail/", None,
     once(LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 403)),
    ("admin-emails-action", "POST", "/admin/notifications/outgoingemail/",
     {"action": "retry_selected", "_selected_action": "{email_pk}", "index": "0"},
     once(LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 403)),
    ("admin-email-change-form", "GET", "/admin/notifications/outgoingemail/{email_pk}/change/", None,
     once(LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 403)),
    # Webhook endpoints hold signing secrets and reach out of the network: model permissions only.
    ("admin-webhooks", "GET", "/admin/incidents/webhookendpoint/", None,
     once(LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 403)),
    ("admin-webhooks-test-event", "POST", "/admin/incidents/webhookendpoint/",
     {"action": "send_test_event", "_selected_action": "1", "index": "0"},
     once(LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 403)),
    ("admin-webhook-deliveries", "GET", "/admin/notifications/webhookdelivery/", None,
     once(LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 403)),
    # --- API: reference lists ----------------------------------------------------------------------
    ("api-categories", "GET", "/api/categories", None, once(401, 200, 200, 200, 200, 200, 200, 200)),
    ("api-teams", "GET", "/api/teams", None, once(401, 200, 200, 200, 200, 200, 200, 200)),
    # --- API: the caller's own incidents -------------------------------------------------------------
    ("api-list", "GET", "/api/incidents", None, once(401, 200, 200, 200, 200, 200, 200, 200)),
    ("api-report", "POST", "/api/incidents", {"title": "Water on the floor", "description": "Server room."},
     once(401, 201, 201, 201, 201, 201, 201, 201)),
    ("api-report-category", "POST", "/api/incidents",
     {"category": "team-a-issues", "title": "Water on the floor", "description": "Server room."},
     once(401, 201, 201, 201, 201, 201, 201, 201)),
    ("api-list-put", "PUT", "/api/incidents", {"title": "x"}, once(401, 405, 405, 405, 405, 405, 405, 405)),
    ("api-list-patch", "PATCH", "/api/incidents", {"title": "x"}, once(401, 405, 405, 405, 405, 405, 405, 405)),
    ("api-list-delete", "DELETE", "/api/incidents", None, once(401, 405, 405, 405, 405, 405, 405, 405)),
    ("api-get", "GET", "/api/incidents/{id}", None, {
        PUBLIC:  (401, 200, 200, 200, 200, 200, 200, 200),
        PRIVATE: (401, 200, 404, 200, 404, 200, 200, 200)}),
    ("api-edit", "PATCH", "/api/incidents/{id}", {"title": "Corrected title"}, {
        PUBLIC:  (401, 200, 403, 403, 403, 403, 403, 200),
        PRIVATE: (401, 200, 404, 403, 404, 403, 403, 200)}),
    ("api-acknowledge", "PATCH", "/api/incidents/{id}", {"status": Status.ACKNOWLEDGED}, {
        PUBLIC:  (401, 403, 403, 200, 403, 200, 403, 200),
        PRIVATE: (401, 403, 404, 200, 404, 200, 403, 200)}),
    ("api-close", "PATCH", "/api/incidents/{id}", {"status": Status.CLOSED}, {
        PUBLIC:  (401, 200, 403, 403, 403, 403, 403, 200),
        PRIVATE: (401, 200, 404, 403, 404, 403, 403, 200)}),
    ("api-severity", "PATCH", "/api/incidents/{id}", {"severity": Severity.CRITICAL}, {
        PUBLIC:  (401, 403, 403, 200, 403, 200, 403, 200),
        PRIVATE: (401, 403, 404, 200, 404, 200, 403, 200)}),
    # Only staff make an incident private or public (asking for what it is already changes nothing).
    ("api-visibility", "PATCH", "/api/incidents/{id}", {"visibility": "private"}, {
        PUBLIC:  (401, 403, 403, 403, 403, 403, 403, 200),
        PRIVATE: (401, 200, 404, 403, 404, 403, 403, 200)}),
    ("api-team", "PATCH", "/api/incidents/{id}", {"team": "team-b"}, {
        PUBLIC:  (401, 403, 403, 200, 403, 200, 403, 200),
        PRIVATE: (401, 403, 404, 200, 404, 200, 403, 200)}),
    ("api-category", "PATCH", "/api/incidents/{id}", {"category": "team-b-issues"}, {
        PUBLIC:  (401, 403, 403, 200, 403, 200, 403, 200),
        PRIVATE: (401, 403, 404, 200, 404, 200, 403, 200)}),
    ("api-assign-member", "PATCH", "/api/incidents/{id}", {"assignee": "{team_a_member}"}, {
        PUBLIC:  (401, 403, 403, 200, 403, 200, 403, 200),
        PRIVATE: (401, 403, 404, 200, 404, 200, 403, 200)}),
    ("api-assign-to-me", "PATCH", "/api/incidents/{id}", {"assignee": "{me}"}, {
        PUBLIC:  (401, 403, 403, 200, 403, 400, 403, 200),
        PRIVATE: (401, 403, 404, 200, 404, 400, 403, 200)}),
    ("api-assign-non-member", "PATCH", "/api/incidents/{id}", {"assignee": "{team_b_member}"}, {
        PUBLIC:  (401, 403, 403, 400, 403, 400, 403, 400),
        PRIVATE: (401, 403, 404, 400, 404, 400, 403, 400)}),
    ("api-unassign", "PATCH", "/api/incidents/{id}", {"assignee": None}, {
        PUBLIC:  (401, 403, 403, 200, 403, 200, 403, 200),
        PRIVATE: (401, 403, 404, 200, 404, 200, 403, 200)}),
    ("api-post", "POST", "/api/incidents/{id}", {"title": "x"}, both(401, 405, 405, 405, 405, 405, 405, 405)),
    ("api-put", "PUT", "/api/incidents/{id}", {"title": "Replaced", "description": "Replaced."},
     both(401, 405, 405, 405, 405, 405, 405, 405)),
    ("api-delete", "DELETE", "/api/incidents/{id}", None, both(401, 405, 405, 405, 405, 405, 405, 405)),
    # --- API: incidents reported by others (the caller's own are not "others'": 404) -------------
    ("api-others", "GET", "/api/publicIncidents", None, once(401, 200, 200, 200, 200, 200, 200, 200)),
    ("api-others-post", "POST", "/api/publicIncidents", {"title": "x", "description": "y"},
     once(401, 405, 405, 405, 405, 405, 405, 405)),
    ("api-others-list-put", "PUT", "/api/publicIncidents", {"title": "x"},
     once(401, 405, 405, 405, 405, 405, 405, 405)),
    ("api-others-list-delete", "DELETE", "/api/publicIncidents", None,
     once(401, 405, 405, 405, 405, 405, 405, 405)),
    ("api-others-get", "GET", "/api/publicIncidents/{id}", None, {
        PUBLIC:  (401, 404, 200, 200, 200, 200, 200, 200),
        PRIVATE: (401, 404, 404, 200, 404, 200, 200, 200)}),
    ("api-others-put", "PUT", "/api/publicIncidents/{id}", {"title": "x"},
     both(401, 405, 405, 405, 405, 405, 405, 405)),
    ("api-others-patch", "PATCH", "/api/publicIncidents/{id}", {"title": "x"},
     both(401, 405, 405, 405, 405, 405, 405, 405)),
    ("api-others-delete", "DELETE", "/api/publicIncidents/{id}", None, both(401, 405, 405, 405, 405, 405, 405, 405)),
    # --- API: responses ----------------------------------------------------------------------------
    ("api-responses", "GET", "/api/responses/{id}", None, {
        PUBLIC:  (401, 200, 200, 200, 200, 200, 200, 200),
        PRIVATE: (401, 200, 404, 200, 404, 200, 200, 200)}),
    ("api-respond", "POST", "/api/responses/{id}", {"description": "On my way."}, {
        PUBLIC:  (401, 201, 201, 201, 201, 201, 201, 201),
        PRIVATE: (401, 201, 404, 201, 404, 201, 201, 201)}),
    ("api-responses-put", "PUT", "/api/responses/{id}", {"description": "x"},
     both(401, 405, 405, 405, 405, 405, 405, 405)),
    ("api-responses-patch", "PATCH", "/api/responses/{id}", {"description": "x"},
     both(401, 405, 405, 405, 405, 405, 405, 405)),
    ("api-responses-delete", "DELETE", "/api/responses/{id}", None, both(401, 405, 405, 405, 405, 405, 405, 405)),
    # --- Attachments: seen by whoever sees the incident; added by whoever may respond ------------
    ("report-with-photo", "POST", "/incidents/new/",
     {"category": "{category_a_pk}", "title": "Water on the floor", "description": "Server room.",
      "severity": Severity.HIGH, "files": PHOTO},
     once(LOGIN, 302, 302, 302, 302, 302, 302, 302)),
    ("respond-with-photo", "POST", "/incidents/{id}/respond/", {"description": "On my way.", "files": PHOTO}, {
        PUBLIC:  (LOGIN, 302, 302, 302, 302, 302, 302, 302),
        PRIVATE: (LOGIN, 302, 404, 302, 404, 302, 302, 302)}),
    ("api-attachments", "GET", "/api/incidents/{id}/attachments", None, {
        PUBLIC:  (401, 200, 200, 200, 200, 200, 200, 200),
        PRIVATE: (401, 200, 404, 200, 404, 200, 200, 200)}),
    ("api-attach", "POST", "/api/incidents/{id}/attachments", {"file": PHOTO}, {
        PUBLIC:  (401, 201, 201, 201, 201, 201, 201, 201),
        PRIVATE: (401, 201, 404, 201, 404, 201, 201, 201)}),
    ("api-attachments-delete", "DELETE", "/api/incidents/{id}/attachments", None,
     both(401, 405, 405, 405, 405, 405, 405, 405)),
    ("api-attachment-file", "GET", "/api/incidents/{id}/attachments/{attachment_pk}/file", None, {
        PUBLIC:  (401, 200, 200, 200, 200, 200, 200, 200),
        PRIVATE: (401, 200, 404, 200, 404, 200, 200, 200)}),
    ("api-attachment-thumbnail", "GET", "/api/incidents/{id}/attachments/{attachment_pk}/thumbnail", None, {
        PUBLIC:  (401, 200, 200, 200, 200, 200, 200, 200),
        PRIVATE: (401, 200, 404, 200, 404, 200, 200, 200)}),
    ("api-attachment-file-delete", "DELETE", "/api/incidents/{id}/attachments/{attachment_pk}/file", None,
     both(401, 405, 405, 405, 405, 405, 405, 405)),
    # --- API: token, schema, docs (open to all) --------------------------------------------------
    ("api-token", "POST", "/api/auth/token", {"username": "alice", "password": PASSWORD},
     once(200, 200, 200, 200, 200, 200, 200, 200)),
    ("api-token-get", "GET", "/api/auth/token", None, once(405, 405, 405, 405, 405, 405, 405, 405)),
    ("api-token-put", "PUT", "/api/auth/token", {"username": "alice", "password": PASSWORD},
     once(405, 405, 405, 405, 405, 405, 405, 405)),
    ("api-token-delete", "DELETE", "/api/auth/token", None, once(405, 405, 405, 405, 405, 405, 405, 405)),
    ("api-schema", "GET", "/api/schema", None, once(200, 200, 200, 200, 200, 200, 200, 200)),
    ("api-docs", "GET", "/api/docs", None, once(200, 200, 200, 200, 200, 200, 200, 200)),
]
# fmt: on


def event(incident, actor, kind, **fields) -> bool:
    return IncidentEvent.objects.filter(incident=incident, actor=actor, kind=kind, **fields).exists()


def reported(actor, **fields) -> bool:
    return Incident.objects.filter(reporter=actor, title="Water on the floor", **fields).exists()


# Web controls that, once they have done their work, show the incident's page again.
BACK_TO_THE_INCIDENT = {
    "edit",
    "respond",
    "acknowledge",
    "close",
    "severity",
    "unassign",
    "assign-member",
    "assign-to-me",
}

# What an accepted change must have done: `(incident as stored now, actor, cast) -> bool`,
# `cast` being the users the rows name.
EFFECTS = {
    "report": lambda i, actor, cast: reported(actor, team__slug="team-a"),
    "api-report": lambda i, actor, cast: reported(actor),
    "api-report-category": lambda i, actor, cast: reported(actor, team__slug="team-a", category__slug="team-a-issues"),
    "edit": lambda i, actor, cast: (
        (i.title, i.description) == ("Corrected title", "Corrected description.")
        and event(i, actor, EventKind.EDITED, field="title")
        and event(i, actor, EventKind.EDITED, field="description")
    ),
    "respond": lambda i, actor, cast: (
        event(i, actor, EventKind.RESPONDED, response__description="On my way.")
        and Response.objects.filter(incident=i, author=actor).count() == 1
    ),
    "acknowledge": lambda i, actor, cast: (
        i.status == Status.ACKNOWLEDGED and event(i, actor, EventKind.STATUS_CHANGED, new_value=Status.ACKNOWLEDGED)
    ),
    "close": lambda i, actor, cast: (
        i.status == Status.CLOSED and event(i, actor, EventKind.STATUS_CHANGED, new_value=Status.CLOSED)
    ),
    "severity": lambda i, actor, cast: (
        i.severity == Severity.CRITICAL and event(i, actor, EventKind.SEVERITY_CHANGED, new_value=Severity.CRITICAL)
    ),
    "unassign": lambda i, actor, cast: i.assignee_id is None and event(i, actor, EventKind.UNASSIGNED, old_value="asa"),
    "assign-member": lambda i, actor, cast: (
        i.assignee_id == cast["team_a_member"].pk and event(i, actor, EventKind.ASSIGNED, new_value="tara")
    ),
    "assign-to-me": lambda i, actor, cast: (
        i.assignee_id == actor.pk and event(i, actor, EventKind.ASSIGNED, new_value=actor.username)
    ),
    "move-team": lambda i, actor, cast: i.team.slug == "team-b" and event(i, actor, EventKind.TEAM_CHANGED),
    "api-category": lambda i, actor, cast: (
        i.category.slug == "team-b-issues" and event(i, actor, EventKind.CATEGORY_CHANGED)
    ),
    "report-with-photo": lambda i, actor, cast: reported(
        actor, team__slug="team-a", attachments__filename="photo.jpg", attachments__uploaded_by=actor
    ),
    "respond-with-photo": lambda i, actor, cast: (
        Attachment.objects.filter(incident=i, uploaded_by=actor, response__author=actor).count() == 1
        and event(i, actor, EventKind.ATTACHED, new_value="photo.jpg")
    ),
    "api-attach": lambda i, actor, cast: (
        Attachment.objects.filter(incident=i, uploaded_by=actor, response=None, filename="photo.jpg").count() == 1
        and event(i, actor, EventKind.ATTACHED, new_value="photo.jpg")
    ),
    # Asking for the visibility a private incident has already is accepted and changes nothing.
    "api-visibility": lambda i, actor, cast: i.visibility == Visibility.PRIVATE,
}
EFFECTS.update(
    {
        "api-edit": lambda i, actor, cast: (
            i.title == "Corrected title" and event(i, actor, EventKind.EDITED, field="title")
        ),
        "api-respond": EFFECTS["respond"],
        "api-acknowledge": EFFECTS["acknowledge"],
        "api-close": EFFECTS["close"],
        "api-severity": EFFECTS["severity"],
        "api-unassign": EFFECTS["unassign"],
        "api-assign-member": EFFECTS["assign-member"],
        "api-assign-to-me": EFFECTS["assign-to-me"],
        "api-team": EFFECTS["move-team"],
    }
)


def cells():
    for name, method, path, data, expected in MATRIX:
        for visibility, answers in expected.items():
            for role, answer in zip(ROLES, answers, strict=True):
                case_id = f"{name}-{role}" if visibility == ANY else f"{name}-{visibility}-{role}"
                # The API by token and by a browser's session; anonymous callers have neither.
                ways = (TOKEN, SESSION) if path.startswith("/api/") and role != "anonymous" else (None,)
                for auth in ways:
                    yield pytest.param(
                        name,
                        method,
                        path,
                        data,
                        visibility,
                        role,
                        auth,
                        answer,
                        id=f"{case_id}-{auth}" if auth else case_id,
                    )


def snapshot(incident) -> dict:
    """Everything a refused request could have changed."""
    return {
        "incident": Incident.objects.filter(pk=incident.pk).values().get(),
        "incidents": Incident.objects.count(),
        "responses": Response.objects.count(),
        "events": IncidentEvent.objects.count(),
        "users": list(User.objects.order_by("pk").values()),
        "tokens": sorted(Token.objects.values_list("key", flat=True)),
        "emails": OutgoingEmail.objects.count(),
        "webhooks": WebhookDelivery.objects.count(),
        "endpoints": list(WebhookEndpoint.objects.values()),
        "tasks": DBTaskResult.objects.count(),
        "attachments": Attachment.objects.count(),
        "stored files": sorted(str(path) for path in Path(settings.MEDIA_ROOT).rglob("*") if path.is_file()),
    }


def fill(value, names: dict):
    """Put the incident's ids (and an e-mail row's, the users' names...) into a path or a
    form value."""
    if value == PHOTO:
        return samples.upload("photo.jpg", samples.image("JPEG"))
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, dict):
        return {key: fill(item, names) for key, item in value.items()}
    return value


def send(client, method, path, data, token):
    if path.startswith("/api/"):
        extra = {"HTTP_AUTHORIZATION": f"Token {token}"} if token else {}
        if method == "POST" and any(hasattr(value, "read") for value in (data or {}).values()):
            return client.post(path, data, **extra)  # multipart, as an upload is sent
        body = json.dumps(data) if data is not None else ""
        return client.generic(method, path, body, content_type="application/json", **extra)
    if method == "GET":
        return client.get(path)
    return client.post(path, data)


def test_every_route_has_a_matrix_row():
    """A guard on the table itself: each URL pattern of irms_site, accounts, incidents and
    the API (the admin's own pages aside) is reached by at least one row."""

    def routes(resolver, prefix=""):
        for entry in resolver.url_patterns:
            route = prefix + str(entry.pattern).removeprefix("^")
            if not hasattr(entry, "url_patterns"):
                yield route
            elif route != "admin/":
                yield from routes(entry, route)

    covered = {
        resolve(path.format(id=uuid.UUID(int=0), pk=1, email_pk=1, attachment_pk=1)).route
        for _name, _method, path, _data, _expected in MATRIX
    }

    assert set(routes(get_resolver())) - covered == set()


@pytest.mark.parametrize(("name", "method", "path", "data", "visibility", "role", "auth", "expected"), list(cells()))
def test_authorization_matrix(
    client,
    request,
    team_a_public_incident,
    team_a_private_incident,
    team_a_member,
    team_b_member,
    name,
    method,
    path,
    data,
    visibility,
    role,
    auth,
    expected,
):
    # given
    incident = team_a_private_incident if visibility == PRIVATE else team_a_public_incident
    user = None if role == "anonymous" else request.getfixturevalue(ROLE_FIXTURE[role])
    names = {
        "id": incident.incident_id,
        "pk": incident.pk,
        "email_pk": OutgoingEmail.objects.order_by("pk").first().pk,
        "category_a_pk": incident.category_id,
        "me": user.username if user else "",
        "team_a_member": team_a_member.username,
        "team_b_member": team_b_member.username,
    }
    if "{attachment_pk}" in path:
        photo = samples.upload("photo.jpg", samples.image("JPEG"))
        names["attachment_pk"] = services.add_attachment(incident=incident, uploader=incident.reporter, file=photo).pk
    path, data = fill(path, names), fill(data, names)
    token = None
    if auth == TOKEN:
        token = Token.objects.create(user=user).key
    elif user is not None:
        client.force_login(user)
    before = snapshot(incident)

    # when
    response = send(client, method, path, data, token)

    # then
    status = {LOGIN: 302, ADMIN_LOGIN: 302, AWAY: 302}.get(expected, expected)
    assert response.status_code == status, response.content[:300]
    if expected == LOGIN:
        assert response["Location"] == "/accounts/login/?" + urlencode({"next": path}, safe="/")
    elif expected == ADMIN_LOGIN:
        assert response["Location"] == "/admin/login/?" + urlencode({"next": path}, safe="/")
    elif expected == AWAY:
        assert "login" not in response["Location"]
    if status == 200 and path.endswith(DOWNLOADS):
        assert response["Content-Security-Policy"] == "sandbox; default-src 'none'"
        assert response["X-Content-Type-Options"] == "nosniff"
    elif path.startswith("/api/") and not path.startswith(NOT_JSON):
        assert response["Content-Type"] == "application/json"
        if status >= 400:
            assert response.json()["error"]
        if status == 401:
            assert response.json()["error"] == "Unauthorized access"
    if expected in REFUSED or method == "GET":
        assert snapshot(incident) == before
    elif name in EFFECTS:
        if name in BACK_TO_THE_INCIDENT:
            assert response["Location"] == incident.get_absolute_url()
        stored = Incident.objects.select_related("team", "category").get(pk=incident.pk)
        assert EFFECTS[name](stored, user, {"team_a_member": team_a_member}), f"{name}: accepted, but not done"


# --- What each list shows ------------------------------------------------------------------------
#
# The private incident is a 404 for those who may not see it; it must not turn up in any
# list, search, filter or count either. Per list: which of the two team A incidents each
# role finds there (anonymous visitors are sent to sign in, as the matrix says).

BOTH, PUB, NONE = {PUBLIC, PRIVATE}, {PUBLIC}, set()
VISIBLE = {
    "owner": BOTH,
    "other": PUB,
    "team_a": BOTH,
    "team_b": PUB,
    "sees_all": BOTH,
    "assignee": BOTH,
    "staff": BOTH,
}
OTHERS = {**VISIBLE, "owner": NONE}  # lists of what others reported
MINE = dict.fromkeys(VISIBLE, NONE) | {"owner": BOTH}  # lists of what the caller reported

LISTS = {
    # path: what each role finds there
    "/incidents/?all=1": VISIBLE,
    "/incidents/?search=floor": VISIBLE,  # both descriptions say "Third floor"
    "/incidents/?team=team-a": VISIBLE,
    "/incidents/?visibility=private": {role: found & {PRIVATE} for role, found in VISIBLE.items()},
    "/incidents/?assignee=asa": VISIBLE,
    "/incidents/public/": OTHERS,
    "/incidents/mine/": MINE,
    "/dashboard/": VISIBLE,
    "/api/incidents": MINE,
    "/api/incidents?team=team-a": MINE,
    "/api/publicIncidents": OTHERS,
    "/api/publicIncidents?search=floor": OTHERS,
    "/api/publicIncidents?visibility=private": {role: found & {PRIVATE} for role, found in OTHERS.items()},
}


# How many of the two team A incidents each role's metrics of team A count (`None`: refused).
METRICS_FOUND = {
    "owner": None, "other": None, "team_a": 2, "team_b": 1, "sees_all": 2, "assignee": None, "staff": 2,
}  # fmt: skip


@pytest.mark.parametrize(("role", "found"), METRICS_FOUND.items())
def test_metrics_count_what_each_role_may_see(
    client, request, team_a_public_incident, team_a_private_incident, role, found
):
    # given
    client.force_login(request.getfixturevalue(ROLE_FIXTURE[role]))

    # when
    api = client.get("/api/metrics?team=team-a")
    csv = client.get("/metrics/export.csv?team=team-a")

    # then
    if found is None:
        assert (api.status_code, csv.status_code) == (403, 403)
    else:
        assert api.status_code == csv.status_code == 200
        assert api.json()["reported"] == found
        assert f"reported,{found}" in csv.content.decode().splitlines()


def list_cases():
    for path, found in LISTS.items():
        for role in ROLES[1:]:
            for auth in (TOKEN, SESSION) if path.startswith("/api/") else (SESSION,):
                # MariaDB's full-text index sees committed rows only: searches run committed.
                marks = [pytest.mark.django_db(transaction=True)] if "search=" in path else []
                yield pytest.param(path, role, auth, found[role], id=f"{path}-{role}-{auth}", marks=marks)


@pytest.mark.parametrize(("path", "role", "auth", "expected"), list(list_cases()))
def test_lists_show_each_role_what_it_may_see(
    client, request, team_a_public_incident, team_a_private_incident, path, role, auth, expected
):
    # given
    user = request.getfixturevalue(ROLE_FIXTURE[role])
    ids = {PUBLIC: str(team_a_public_incident.incident_id), PRIVATE: str(team_a_private_incident.incident_id)}
    extra = {}
    if auth == TOKEN:
        extra["HTTP_AUTHORIZATION"] = f"Token {Token.objects.create(user=user).key}"
    else:
        client.force_login(user)

    # when
    response = client.get(path, **extra)

    # then
    assert response.status_code == 200
    if path.startswith("/api/"):
        assert {item["incident_id"] for item in response.json()} == {ids[v] for v in expected}
        return
    page = response.content.decode()
    assert {v for v, incident_id in ids.items() if incident_id in page} == expected
    if not path.startswith("/dashboard/"):
        count = len(expected)
        assert re.search(rf">\s*{count} incidents?\s*<", page), f"no count of {count} on the page"
