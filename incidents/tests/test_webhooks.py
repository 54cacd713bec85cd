"""Outbound webhooks (incidents/webhooks.py): which events go to which endpoint (the
permission layer's rules: private only with `include_private`, a team's endpoint only its
team's incidents), what each format says (the API's incident representation, never an
e-mail address), rotation, auto-disabling, and the admin. Delivered by the real task code
to a real HTTP receiver on loopback (notifications/tests/receiver.py)."""

import json
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from incidents import permissions, services, webhooks
from incidents.models import Severity, Status, Visibility, WebhookEndpoint, WebhookEvent, WebhookFormat
from notifications.models import OutboxMessage, OutgoingEmail, WebhookDelivery
from notifications.tests.receiver import Answer, receiving
from notifications.tests.test_webhooks import make_due, plain_hmac_ok

from . import samples
from .factories import api_client, category_of, make_incident, set_clock

State = OutboxMessage.State


@pytest.fixture(autouse=True)
def loopback_allowed(settings):
    """The receiver is on loopback over http: allowed here, as a trusted network would be."""
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_ALLOW_PRIVATE = True
    return settings


def endpoint(url="https://hooks.example.org/irms", **fields) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(url=url, description=fields.pop("description", "hook"), **fields)


def bodies(hook: WebhookEndpoint) -> list[dict]:
    return [json.loads(row.body) for row in WebhookDelivery.objects.filter(destination=hook.key).order_by("pk")]


def types(hook: WebhookEndpoint) -> list[str]:
    return list(WebhookDelivery.objects.filter(destination=hook.key).order_by("pk").values_list("event", flat=True))


# --- Which events, in which words ---------------------------------------------------------------


def test_each_event_is_announced_once_in_order(reporter, responder, team_a, staff):
    hook = endpoint()
    incident = make_incident(reporter, files=[samples.upload("auth.log", samples.TEXT)])
    services.change_severity(incident=incident, actor=responder, severity=Severity.HIGH)
    services.change_status(incident=incident, actor=responder, status=Status.ACKNOWLEDGED)
    services.assign(incident=incident, actor=responder, assignee=responder)
    services.add_response(incident=incident, author=responder, description="On my way.")
    services.edit_incident(incident=incident, actor=staff, title="Printer really on fire")  # not a webhook event
    services.move_to_team(incident=incident, actor=responder, team=team_a)
    set_clock(incident, "resolve", due=timezone.now() - timedelta(minutes=5))
    services.escalate_breaches(incident_pk=incident.pk)

    assert types(hook) == [
        "incident.reported",
        "incident.attachment_added",
        "incident.severity_changed",
        "incident.status_changed",
        "incident.assigned",
        "incident.responded",
        "incident.team_changed",
        "incident.assigned",  # the move unassigned rita, who is not in team A
        "incident.sla_breached",
    ]
    found = bodies(hook)
    assert {body["data"]["incident"]["incident_id"] for body in found} == {str(incident.incident_id)}
    assert [body["data"]["actor"] for body in found[:3]] == ["alice", "alice", "rita"]
    assert found[1]["data"]["change"]["attachment"]["filename"] == "auth.log"
    assert found[2]["data"]["change"] == {"field": "severity", "from": "Medium", "to": "High"}
    assert found[3]["data"]["change"] == {"field": "status", "from": "Reported", "to": "Acknowledged"}
    assert found[4]["data"]["change"] == {"field": "assignee", "from": None, "to": "rita"}
    assert found[5]["data"]["change"]["response"]["description"] == "On my way."
    assert found[6]["data"]["change"] == {"field": "team", "from": "Response team", "to": "Team A"}
    assert found[7]["data"]["change"] == {"field": "assignee", "from": "rita", "to": None}
    assert found[8]["data"]["change"]["clock"] == "resolve" and found[8]["data"]["actor"] is None
    assert found[8]["data"]["incident"]["team"] == "team-a"


def test_the_incident_is_the_apis_representation_without_any_address(reporter, responder):
    hook = endpoint()
    incident = make_incident(reporter)
    (body,) = bodies(hook)
    assert set(body) == {"type", "timestamp", "data"}
    assert body["type"] == "incident.reported"
    assert body["timestamp"] == incident.events.get().created_at.isoformat()
    api = api_client(reporter).get(reverse("api:incident-detail", kwargs={"incident_id": incident.incident_id}))
    assert api.status_code == 200
    expected = {**api.json(), "user_email": None}  # the reporter sees their own address; a webhook never
    assert api.json()["user_email"] == "alice@example.com"
    assert body["data"]["incident"] == expected


@pytest.mark.parametrize("fmt", WebhookFormat.values)
def test_no_payload_carries_an_email_address(reporter, responder, fmt):
    hook = endpoint(format=fmt)
    incident = make_incident(reporter)
    services.assign(incident=incident, actor=responder, assignee=responder)
    services.add_response(incident=incident, author=responder, description="Seen.")
    webhooks.send_test_event(hook)
    rows = WebhookDelivery.objects.filter(destination=hook.key)
    assert rows.count() == 4
    for row in rows:
        assert "@example.com" not in row.body and "@" not in json.dumps(row.headers)


def test_an_endpoint_gets_only_the_events_it_asked_for(reporter, responder):
    hook = endpoint(events=[WebhookEvent.STATUS_CHANGED])
    everything = endpoint(events=[])
    incident = make_incident(reporter)
    services.change_status(incident=incident, actor=responder, status=Status.ACKNOWLEDGED)
    assert types(hook) == ["incident.status_changed"]
    assert types(everything) == ["incident.reported", "incident.status_changed"]


def test_nothing_is_queued_for_a_change_that_rolls_back(reporter):
    endpoint()
    with pytest.raises(RuntimeError), transaction.atomic():
        make_incident(reporter)
        raise RuntimeError("the request failed after the report")
    assert not WebhookDelivery.objects.exists()


# --- Who hears of what ---------------------------------------------------------------------------


def test_private_and_team_filters(reporter, team_a, team_b):
    hooks = {
        "all": endpoint(),
        "all+private": endpoint(include_private=True),
        "team-a": endpoint(team=team_a),
        "team-a+private": endpoint(team=team_a, include_private=True),
        "team-b+private": endpoint(team=team_b, include_private=True),
        "inactive": endpoint(active=False, include_private=True),
    }
    incidents = {
        "public": make_incident(reporter),
        "private": make_incident(reporter, visibility=Visibility.PRIVATE),
        "a-public": make_incident(reporter, category=category_of(team_a)),
        "a-private": make_incident(reporter, category=category_of(team_a), visibility=Visibility.PRIVATE),
    }
    heard = {
        name: sorted(
            title
            for title, incident in incidents.items()
            if WebhookDelivery.objects.filter(destination=hook.key, ordering_key=str(incident.incident_id)).exists()
        )
        for name, hook in hooks.items()
    }
    assert heard == {
        "all": ["a-public", "public"],
        "all+private": ["a-private", "a-public", "private", "public"],
        "team-a": ["a-public"],
        "team-a+private": ["a-private", "a-public"],
        "team-b+private": [],
        "inactive": [],
    }
    # The same answers from the permission layer itself.
    for name, hook in hooks.items():
        for title, incident in incidents.items():
            assert permissions.webhook_may_receive(hook, incident) == (title in heard[name])


def test_a_team_endpoint_hears_of_an_incident_moved_to_its_team(reporter, responder, team_a):
    hook = endpoint(team=team_a)
    incident = make_incident(reporter)
    services.move_to_team(incident=incident, actor=responder, team=team_a)
    assert types(hook) == ["incident.team_changed"]


# --- Formats --------------------------------------------------------------------------------------


def test_slack_message(reporter):
    hook = endpoint(format=WebhookFormat.SLACK)
    incident = make_incident(reporter, title="<!channel> Gas & smoke @here", severity=Severity.HIGH)
    (body,) = bodies(hook)
    # User text cannot ping a channel (Slack's <!channel>, Mattermost's @here) or forge a
    # link, in the text (what notifications and Mattermost show) and in the blocks alike.
    assert body["text"].startswith("[High] &lt;!channel&gt; Gas &amp; smoke @\u200bhere: Reported by alice")
    title, fields, context = body["blocks"]
    assert title["text"]["text"] == "*&lt;!channel&gt; Gas &amp; smoke @\u200bhere*\nReported by alice"
    assert [field["text"] for field in fields["fields"]] == [
        "*Severity*\nHigh",
        "*Status*\nReported",
        "*Team*\nresponse",
    ]
    assert f"http://testserver/incidents/{incident.incident_id}/" in context["elements"][0]["text"]


def test_teams_adaptive_card(reporter):
    hook = endpoint(format=WebhookFormat.TEAMS)
    incident = make_incident(reporter)
    (body,) = bodies(hook)
    assert body["type"] == "message"
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["body"][0]["text"] == "Printer on fire"
    assert {fact["title"]: fact["value"] for fact in card["body"][2]["facts"]}["Severity"] == "Medium"
    assert card["actions"][0]["url"] == f"http://testserver/incidents/{incident.incident_id}/"


# --- Delivered, signed, rotated --------------------------------------------------------------------


def test_delivered_to_a_real_receiver_and_verifiable(reporter, run_tasks):
    with receiving() as receiver:
        hook = endpoint(url=receiver.url)
        make_incident(reporter)
        run_tasks()
    (received,) = receiver.received
    assert Webhook(hook.secret).verify(received.body, received.headers)["type"] == "incident.reported"
    assert plain_hmac_ok(hook.secret, received)
    assert hook.secret.startswith("whsec_")


def test_a_rotated_secret_signs_beside_the_old_one_for_24_hours(reporter, run_tasks):
    with receiving() as receiver:
        hook = endpoint(url=receiver.url)
        old = hook.secret
        new = webhooks.rotate_secret(hook)
        hook.refresh_from_db()
        assert new == hook.secret != old and hook.previous_secret == old
        assert timedelta(hours=23) < hook.previous_secret_expires_at - timezone.now() <= timedelta(hours=24)
        make_incident(reporter)
        run_tasks()
        WebhookEndpoint.objects.filter(pk=hook.pk).update(previous_secret_expires_at=timezone.now())
        webhooks.send_test_event(hook)
        run_tasks()
    during, after = receiver.received
    for secret in (old, new):
        Webhook(secret).verify(during.body, during.headers)
        assert plain_hmac_ok(secret, during)
    Webhook(new).verify(after.body, after.headers)
    assert plain_hmac_ok(new, after) and not plain_hmac_ok(old, after)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(after.body, after.headers)


def test_after_20_failures_in_a_row_the_endpoint_is_disabled_and_staff_are_mailed(reporter, staff, other, run_tasks):
    with receiving(Answer(status=500)) as receiver:
        hook = endpoint(url=receiver.url)
        WebhookEndpoint.objects.filter(pk=hook.pk).update(consecutive_failures=webhooks.DISABLE_AFTER - 2)
        make_incident(reporter)
        run_tasks()  # failure 19
        hook.refresh_from_db()
        assert hook.active and hook.consecutive_failures == webhooks.DISABLE_AFTER - 1
        make_due()
        run_tasks()  # failure 20
        hook.refresh_from_db()
        assert not hook.active and hook.disabled_at is not None
        make_due()
        run_tasks()  # the pending retry is given up without a request
        make_incident(reporter)  # and new events are not queued for it
    assert len(receiver.received) == 2
    assert set(WebhookDelivery.objects.values_list("state", flat=True)) == {State.FAILED}
    mails = OutgoingEmail.objects.filter(kind="webhook_disabled")
    assert list(mails.values_list("to", flat=True)) == [staff.email]
    assert "20 failed attempts" in mails.get().body_text
    assert f"/admin/incidents/webhookendpoint/{hook.pk}/change/" in mails.get().body_text
    # The host, never the URL: a chat webhook's URL is a credential.
    assert "127.0.0.1" in mails.get().body_text and receiver.url not in mails.get().body_text


def test_a_success_resets_the_failure_count(reporter, run_tasks):
    with receiving(Answer(status=502), Answer()) as receiver:
        hook = endpoint(url=receiver.url)
        make_incident(reporter)
        run_tasks()
        assert WebhookEndpoint.objects.get(pk=hook.pk).consecutive_failures == 1
        make_due()
        run_tasks()
    assert WebhookEndpoint.objects.get(pk=hook.pk).consecutive_failures == 0


def test_endpoint_urls_are_checked_when_saved(db, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    hook = WebhookEndpoint(url="http://localhost:8000/hook")
    with pytest.raises(ValidationError) as refused:
        hook.full_clean()
    assert "url" in refused.value.message_dict
    with pytest.raises(ValidationError) as refused:
        WebhookEndpoint(url="https://8.8.8.8/", events=["incident.nope"]).full_clean()
    assert "events" in refused.value.message_dict


# --- The admin ---------------------------------------------------------------------------------------


def test_admin_creates_an_endpoint_and_shows_its_secret_once(admin_client, team_a):
    url = reverse("admin:incidents_webhookendpoint_add")
    response = admin_client.post(
        url,
        {
            "description": "SOAR",
            "url": "https://8.8.8.8/hooks/irms",
            "format": "standard",
            "events": ["incident.reported", "incident.sla_breached"],
            "team": team_a.pk,
            "active": "on",
        },
        follow=True,
    )
    hook = WebhookEndpoint.objects.get()
    assert (hook.events, hook.team, hook.include_private) == (
        ["incident.reported", "incident.sla_breached"],
        team_a,
        False,
    )
    assert hook.secret in response.content.decode()
    change = admin_client.get(reverse("admin:incidents_webhookendpoint_change", args=[hook.pk]))
    assert change.status_code == 200 and hook.secret not in change.content.decode()


def test_admin_refuses_a_private_address_with_a_form_error(admin_client, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    response = admin_client.post(
        reverse("admin:incidents_webhookendpoint_add"),
        {"description": "x", "url": "http://localhost/hook", "format": "standard", "active": "on"},
    )
    assert response.status_code == 200
    assert "loopback, private, link-local or multicast" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_a_delivery_queued_before_the_url_changed_goes_to_the_new_url(reporter, run_tasks):
    # given: an event queued for an endpoint whose (leaked) URL staff then replace
    with receiving(Answer()) as old, receiving(Answer()) as new:
        hook = endpoint(url=old.url)
        make_incident(reporter)
        hook.url = new.url
        hook.save()

        # when
        run_tasks()

    # then
    assert old.received == []
    assert [json.loads(r.body)["type"] for r in new.received] == ["incident.reported"]


def test_admin_actions_test_event_rotate_and_redeliver(admin_client, reporter, run_tasks):
    changelist = reverse("admin:incidents_webhookendpoint_changelist")
    with receiving(Answer(status=500), Answer()) as receiver:
        hook = endpoint(url=receiver.url)
        admin_client.post(changelist, {"action": "send_test_event", "_selected_action": [hook.pk]})
        (test,) = WebhookDelivery.objects.filter(destination=hook.key)
        assert test.event == "webhook.test"
        run_tasks()  # answered 500: queued for a retry
        WebhookDelivery.objects.filter(pk=test.pk).update(state=State.FAILED)
        admin_client.post(changelist, {"action": "redeliver_failed", "_selected_action": [hook.pk]})
        run_tasks()
        old = hook.secret
        response = admin_client.post(
            changelist, {"action": "rotate_secret", "_selected_action": [hook.pk]}, follow=True
        )
    hook.refresh_from_db()
    assert hook.previous_secret == old and hook.secret in response.content.decode()
    assert [r.headers["webhook-id"] for r in receiver.received] == [test.webhook_id, test.webhook_id]
    page = admin_client.get(reverse("admin:incidents_webhookendpoint_change", args=[hook.pk])).content.decode()
    assert "webhook.test" in page and "<td>500</td>" in page and "<td>204</td>" in page
    assert "DeliveryRefused: the receiver answered 500" in page
    log = admin_client.get(reverse("admin:notifications_webhookdelivery_changelist"), {"destination": hook.key})
    assert log.status_code == 200
    delivery = admin_client.get(reverse("admin:notifications_webhookdelivery_change", args=[test.pk]))
    assert delivery.status_code == 200


def test_staff_who_may_only_view_endpoints_cannot_act_on_them_nor_read_their_urls(client, make_user):
    # given: staff with the view permission only
    from django.contrib.auth.models import Permission

    viewer = make_user("vic", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_webhookendpoint"))
    hook = endpoint(url="https://hooks.example.org/services/T000/B000/secret-part")
    secret = hook.secret
    client.force_login(viewer)
    changelist = reverse("admin:incidents_webhookendpoint_changelist")

    # when: they try every action
    page = client.get(changelist).content.decode()
    for action in ("send_test_event", "rotate_secret", "redeliver_failed"):
        client.post(changelist, {"action": action, "_selected_action": [hook.pk]})

    # then: none is offered, none ran, and the list shows the host, not the URL
    hook.refresh_from_db()
    assert hook.secret == secret
    assert not WebhookDelivery.objects.filter(destination=hook.key).exists()
    assert "rotate_secret" not in page
    assert "hooks.example.org" in page and "secret-part" not in page


@pytest.mark.parametrize(
    "url",
    [
        "https://[::1",
        "javascript:alert(1)",
        "https://" + "a" * 300 + ".example/",
        "https://exa mple.org/",
        "http://8.8.8.8/hook",  # http without WEBHOOK_ALLOW_HTTP
        "https://user:pw@8.8.8.8/",
        "https://8.8.8.8:70000/",
        "",
    ],
)
def test_admin_answers_hostile_urls_with_a_form_error(admin_client, settings, url):
    settings.WEBHOOK_ALLOW_HTTP = False
    settings.WEBHOOK_ALLOW_PRIVATE = False
    response = admin_client.post(
        reverse("admin:incidents_webhookendpoint_add"),
        {"description": "x", "url": url, "format": "standard", "active": "on"},
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["url"]
    assert not WebhookEndpoint.objects.exists()


def test_the_delivery_log_redelivers_for_staff_who_may_change_it_only(admin_client, client, make_user, reporter):
    # given: a failed delivery
    from django.contrib.auth.models import Permission

    hook = endpoint()
    make_incident(reporter)
    (row,) = WebhookDelivery.objects.filter(destination=hook.key)
    WebhookDelivery.objects.filter(pk=row.pk).update(state=OutboxMessage.State.FAILED)
    changelist = reverse("admin:notifications_webhookdelivery_changelist")
    viewer = make_user("vic", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_webhookdelivery"))
    client.force_login(viewer)

    # when: staff who may only view the log try, then a superuser
    client.post(changelist, {"action": "redeliver_selected", "_selected_action": [row.pk]})
    after_viewer = WebhookDelivery.objects.filter(webhook_id=row.webhook_id).count()
    admin_client.post(changelist, {"action": "redeliver_selected", "_selected_action": [row.pk]})

    # then: only the superuser's queued a copy (same webhook-id)
    assert after_viewer == 1
    copies = WebhookDelivery.objects.filter(webhook_id=row.webhook_id).exclude(pk=row.pk)
    assert [copy.state for copy in copies] == [OutboxMessage.State.QUEUED]
