"""Cursor pagination of the API lists (bare arrays, RFC 8288 `Link` headers), and query
budgets that do not grow with the page size or the table."""

import base64
import re
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from incidents import services
from incidents.models import Incident

from .factories import api_client, make_incident


def links(response) -> dict[str, str]:
    """The `Link` header as {rel: url}."""
    return {rel: url for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', response.get("Link", ""))}


def walk(client, url, on_page=None) -> tuple[list[str], list]:
    """Follow rel="next" from `url` until there is none: the incident_ids seen, in order,
    and every page's response. `on_page(number)` runs after each page."""
    seen, pages = [], []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        assert isinstance(response.json(), list)
        seen += [item["incident_id"] for item in response.json()]
        pages.append(response)
        if on_page:
            on_page(len(pages))
        url = links(response).get("next")
    return seen, pages


def make_many(reporter, count, start=None, **overrides) -> list[Incident]:
    """`count` incidents a minute apart, oldest first, ending a minute ago."""
    start = start or timezone.now() - timedelta(minutes=count + 1)
    made = []
    for n in range(count):
        incident = make_incident(reporter, title=f"Incident {n}", **overrides)
        incident.created_at = start + timedelta(minutes=n)
        Incident.objects.filter(pk=incident.pk).update(created_at=incident.created_at)
        made.append(incident)
    return made


def ids(incidents) -> list[str]:
    return [str(incident.incident_id) for incident in incidents]


# --- Walking the lists ------------------------------------------------------------------------


def test_walk_public_incidents_newest_first(other, reporter):
    # given
    made = make_many(reporter, 120)
    client = api_client(other)

    # when
    seen, pages = walk(client, "/api/publicIncidents?page_size=50")

    # then: every item exactly once, newest first
    assert seen == ids(reversed(made))
    assert [len(page.json()) for page in pages] == [50, 50, 20]
    assert "prev" not in links(pages[0])
    assert all("prev" in links(page) for page in pages[1:])
    assert "next" not in links(pages[-1])
    assert all(url.startswith("http://testserver/api/publicIncidents?") for url in links(pages[1]).values())
    # 50 is also the default page size
    assert client.get("/api/publicIncidents").json() == pages[0].json()


def test_prev_link_goes_back_a_page(other, reporter):
    # given
    make_many(reporter, 12)
    client = api_client(other)
    first = client.get("/api/publicIncidents?page_size=5")
    second = client.get(links(first)["next"])

    # when
    back = client.get(links(second)["prev"])

    # then
    assert back.status_code == 200
    assert back.json() == first.json()


@pytest.mark.parametrize("auth", ["token", "session"])
def test_walk_my_incidents_oldest_first(reporter, auth):
    # given
    made = make_many(reporter, 60)

    # when
    seen, pages = walk(api_client(reporter, auth), "/api/incidents?page_size=25&ordering=created_at")

    # then
    assert seen == ids(made)
    assert [len(page.json()) for page in pages] == [25, 25, 10]


def test_explicit_newest_first_ordering(reporter):
    # given
    made = make_many(reporter, 5)

    # when
    response = api_client(reporter).get("/api/incidents?ordering=-created_at")

    # then
    assert [item["incident_id"] for item in response.json()] == ids(reversed(made))


def test_a_list_on_one_page_has_no_link_header(other, reporter):
    # given
    make_many(reporter, 3)

    # when
    response = api_client(other).get("/api/publicIncidents")

    # then
    assert len(response.json()) == 3
    assert "Link" not in response


def test_walk_with_identical_timestamps(other, reporter):
    # given: 30 incidents created in the same microsecond
    made = make_many(reporter, 30)
    Incident.objects.update(created_at=timezone.now() - timedelta(hours=1))
    expected = [str(i) for i in Incident.objects.order_by("-created_at", "-id").values_list("incident_id", flat=True)]

    # when
    seen, _ = walk(api_client(other), "/api/publicIncidents?page_size=7")

    # then
    assert seen == expected
    assert sorted(seen) == sorted(ids(made))


def test_walk_while_new_incidents_arrive(other, reporter):
    # given
    made = make_many(reporter, 40)
    client = api_client(other)
    added = []

    def insert_halfway(page):
        if page == 2:  # 20 of 40 seen
            added.extend(make_incident(reporter, title=f"New {n}") for n in range(10))

    # when
    seen, _ = walk(client, "/api/publicIncidents?page_size=10", on_page=insert_halfway)

    # then: no duplicates, every original exactly once, in order
    assert len(added) == 10
    assert len(seen) == len(set(seen))
    assert [incident_id for incident_id in seen if incident_id not in ids(added)] == ids(reversed(made))


def test_walk_while_incidents_are_inserted_into_the_unseen_part(other, reporter):
    # given: rows that land in the part not yet walked show up once, and shift nothing
    made = make_many(reporter, 40)
    client = api_client(other)
    added = []

    def insert_behind(page):
        if page == 2:
            for n in range(10):
                incident = make_incident(reporter, title=f"Late {n}")
                when = made[5].created_at + timedelta(seconds=n + 1)
                Incident.objects.filter(pk=incident.pk).update(created_at=when)
                added.append(incident)

    # when
    seen, _ = walk(client, "/api/publicIncidents?page_size=10", on_page=insert_behind)

    # then
    assert len(seen) == len(set(seen)) == 50
    assert [incident_id for incident_id in seen if incident_id not in ids(added)] == ids(reversed(made))


def test_filters_survive_the_next_link(other, reporter):
    # given
    make_many(reporter, 15, severity="High")
    make_many(reporter, 15, severity="Low")

    # when
    seen, pages = walk(api_client(other), "/api/publicIncidents?page_size=5&severity=High")

    # then
    assert len(seen) == len(set(seen)) == 15
    assert len(pages) == 3
    assert set(Incident.objects.filter(incident_id__in=seen).values_list("severity", flat=True)) == {"High"}


# --- Bad paging parameters --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page_size=0", "page_size"),
        ("page_size=-1", "page_size"),
        ("page_size=201", "page_size"),
        ("page_size=abc", "page_size"),
        ("page_size=1.5", "page_size"),
        ("ordering=title", "ordering"),
        ("ordering=-id", "ordering"),
        ("page_size=", "page_size"),
    ],
)
@pytest.mark.parametrize("path", ["/api/incidents", "/api/publicIncidents", "/api/responses/{id}"])
def test_bad_paging_parameters_are_400(reporter, public_incident, path, query, field):
    # when
    response = api_client(reporter).get(f"{path.format(id=public_incident.incident_id)}?{query}")

    # then
    assert response.status_code == 400, response.content
    assert response.json()["error"]
    assert response.json()[field]


@pytest.mark.parametrize("cursor", ["zzz", "bz0tMQ%3D%3D"])  # garbage; "o=-1"
@pytest.mark.parametrize("path", ["/api/incidents", "/api/publicIncidents", "/api/responses/{id}"])
def test_an_unknown_cursor_is_a_page_that_does_not_exist(reporter, public_incident, path, cursor):
    # when
    response = api_client(reporter).get(f"{path.format(id=public_incident.incident_id)}?cursor={cursor}")

    # then: 404, like any URL that names nothing, with a hint
    assert response.status_code == 404, response.content
    assert response.json()["error"] == "Invalid cursor: follow the Link headers."


@pytest.mark.parametrize(
    "position", [b"p=2024", b"p=not-a-time", b"p=2024-02-30T00:00:00%2B00:00", b"p=2024-02-01T00:00:00"]
)
def test_tampered_cursor_position_is_a_bad_cursor(reporter, position):
    # given: a well-formed cursor whose position is not a timestamp
    cursor = quote(base64.b64encode(position).decode())

    # when
    response = api_client(reporter).get(f"/api/publicIncidents?cursor={cursor}")

    # then: the same answer as any other bad cursor, not a database date-format message
    assert response.status_code == 404
    assert response.json()["error"] == "Invalid cursor: follow the Link headers."


@pytest.mark.parametrize("size", [1, 200])
def test_page_size_limits_are_inclusive(other, reporter, size):
    # given
    make_many(reporter, 3)

    # when
    response = api_client(other).get(f"/api/publicIncidents?page_size={size}")

    # then
    assert response.status_code == 200
    assert len(response.json()) == min(size, 3)


# --- Query budgets ----------------------------------------------------------------------------
#
# Measured (SQLite and MariaDB alike): authentication 1 (token) or 2 (session and user);
# the user-rate throttle's history in the database cache 6 (read, COUNT(*) for culling,
# and a savepoint around the read-then-update); "is a responder?" 1 (0 for staff); the
# page 1, with the reporter joined and the response count as a subquery; and for
# /api/responses/<id> 1 more to find the incident. Worst case: a session on responses, 11.
# Neither the page size nor the table size changes any of it.

LIST_BUDGET = 11


def count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(queries)


def items(response) -> list:
    body = response.json()
    return body["responses"] if isinstance(body, dict) else body


@pytest.mark.parametrize(
    ("who", "path", "auth"),
    [
        ("reporter", "/api/incidents", "token"),
        ("reporter", "/api/incidents", "session"),
        ("other", "/api/publicIncidents", "token"),
        ("responder", "/api/publicIncidents", "session"),
        ("staff", "/api/publicIncidents", "token"),
        ("reporter", "/api/responses/{id}", "token"),
        ("other", "/api/responses/{id}", "session"),
    ],
)
def test_query_count_grows_with_neither_page_size_nor_table(
    request, reporter, other, responder, django_assert_max_num_queries, who, path, auth
):
    # given: 10 rows (incidents, or responses on one incident)
    target = make_incident(reporter, title="Target")
    url = path.format(id=target.incident_id)

    def grow(count):
        if "responses" in path:
            for n in range(count):
                author = (reporter, other, responder)[n % 3]
                services.add_response(incident=target, author=author, description=f"Update {n}")
        else:
            for incident in make_many(reporter, count, start=timezone.now() - timedelta(days=1))[:3]:
                services.add_response(incident=incident, author=other, description="Seen it.")

    grow(10 if "responses" in path else 9)
    client = api_client(request.getfixturevalue(who), auth)
    client.get(url)  # the throttle's first write is an insert, later ones updates
    few = {size: count_queries(client, f"{url}?page_size={size}") for size in (5, 100)}

    # when: 120 rows
    grow(110)
    many = {size: count_queries(client, f"{url}?page_size={size}") for size in (5, 100, 200)}

    # then
    assert len(items(client.get(f"{url}?page_size=200"))) == 120
    assert len({*few.values(), *many.values()}) == 1, (few, many)
    # Responses carry their attachments: one more query per page (a prefetch), not per row.
    with django_assert_max_num_queries(LIST_BUDGET + 1 if "responses" in path else LIST_BUDGET):
        client.get(f"{url}?page_size=200")
