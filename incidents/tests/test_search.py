"""Full-text search (incidents/search.py): what a query means, alike on SQLite (FTS5) and
MariaDB (InnoDB FULLTEXT); that it is always combined with visibility, filters and the
cursors; that hostile text never breaks it; that every write path keeps the index in step;
and that the database answers from the index, not by scanning the table.

InnoDB adds a row to its FULLTEXT index when the transaction commits, so these tests run
in committed transactions (`transaction=True`) on both databases."""

import json
from base64 import b64decode, b64encode
from io import StringIO
from urllib.parse import parse_qs, urlparse

import pytest
from django.core.management import call_command
from django.db import connection

from incidents import search, services
from incidents.models import Incident, Status, Visibility

from .factories import api_client, make_incident, make_staff, make_team

pytestmark = pytest.mark.django_db(transaction=True)

HOSTILE = [
    '"',
    '""',
    '"gas',
    "*",
    "gas*",
    "*gas",
    "-gas",
    "+gas",
    "-",
    "+",
    "(",
    ")",
    "(gas",
    "gas)",
    "NEAR",
    "NEAR(gas leak)",
    "gas NEAR leak",
    "AND",
    "gas AND",
    "OR gas",
    "NOT",
    "gas NOT leak",
    "title:gas",
    "^gas",
    "{gas}",
    "gas @2",
    "~gas <leak >kitchen",
    "'",
    "gas' OR '1'='1",
    "\\",
    "%",
    "_",
    "é",
    "🔥",
    "a" * 100,
    " ".join(["gas"] * 40),
]


def titles(response) -> list[str]:
    return [item["title"] for item in response.json()]


def api_search(user, text, path="/api/publicIncidents", **params):
    return api_client(user).get(path, {"search": text, **params})


# --- Parsing: no database ------------------------------------------------------------------


@pytest.mark.django_db(transaction=False)
@pytest.mark.parametrize(
    ("text", "fts5", "boolean"),
    [
        ("gas leak", '"gas" AND "leak"*', "+gas +leak*"),
        ("GAS Leák", '"gas" AND "leak"*', "+gas +leak*"),
        ('"out of order" lift', '"out of order" AND "lift"*', '+"out of order" +lift*'),
        ('lift "out of order"', '"lift" AND "out of order"', '+lift +"out of order"'),
        ("e-mail down", '"e mail" AND "down"*', '+"e mail" +down*'),
        ("wi-fi drops", '"drops"*', "+drops*"),  # "wi" and "fi" are both too short
        ("gas le", '"gas" AND "le"*', "+gas +le*"),
        ("the gas in it", '"gas"', "+gas"),
        ('gas* -leak +(kitchen) NEAR "', '"gas" AND "leak" AND "kitchen" AND "near"*', "+gas +leak +kitchen +near*"),
    ],
)
def test_parse_builds_a_quoted_expression_for_each_backend(text, fts5, boolean):
    query = search.parse(text)
    assert query.fts5() == fts5
    assert query.boolean_mode() == boolean


@pytest.mark.django_db(transaction=False)
@pytest.mark.parametrize(
    ("text", "ignored"),
    [("it is", ("it", "is")), ("on", ("on",)), ("the x", ("the", "x")), ("*", ()), ('"of a"', ("of a",))],
)
def test_a_query_of_only_unindexed_words_is_empty_and_says_which(text, ignored):
    query = search.parse(text)
    assert not query
    assert query.ignored == ignored


@pytest.mark.django_db(transaction=False)
@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_only_ever_becomes_quoted_words(text):
    query = search.parse(text)
    for term in query.terms:
        assert all(word.isalnum() for word in term.words)
    assert len(query.terms) <= search.MAX_TERMS


# --- Semantics, on the database --------------------------------------------------------------


@pytest.fixture
def corpus(reporter):
    made = {
        "gas": make_incident(reporter, title="Gas leak in the kitchen", description="Smell near the oven."),
        "gasoline": make_incident(reporter, title="Gasoline spill", description="Car park, level 2."),
        "lift": make_incident(reporter, title="Lift out of order", description="The lift is stuck between floors."),
        "cafe": make_incident(reporter, title="Café flooded", description="Water everywhere near the till."),
        "order": make_incident(reporter, title="Order of fire drills", description="Out today, the lift was used."),
        "it": make_incident(reporter, title="IT is down", description="No network on floor 3."),
    }
    return made


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("gas", {"gas", "gasoline"}, id="prefix-on-the-last-word"),
        pytest.param('"gas"', {"gas"}, id="a-quoted-word-is-exact"),
        pytest.param("gas le", {"gas"}, id="every-word-and-last-as-prefix"),
        pytest.param("kitchen gas", {"gas"}, id="order-of-words-does-not-matter"),
        pytest.param("oven gasoline", set(), id="and-not-or"),
        pytest.param("smell", {"gas"}, id="description"),
        pytest.param("LIFT", {"lift", "order"}, id="case"),
        pytest.param("cafe", {"cafe"}, id="accents-in-the-text"),
        pytest.param("flöoded cafè", {"cafe"}, id="accents-in-the-query"),
        pytest.param('"out of order"', {"lift"}, id="phrase"),
        pytest.param('"order out"', set(), id="phrase-order-matters"),
        pytest.param("the lift", {"lift", "order"}, id="stopwords-left-out"),
        pytest.param("IT down", {"it"}, id="short-words-left-out"),
        pytest.param("it is", set(), id="only-unindexed-words-match-nothing"),
        pytest.param("zeppelin", set(), id="none"),
    ],
)
def test_search_semantics(corpus, reporter, text, expected):
    # when
    response = api_search(reporter, text, path="/api/incidents")

    # then
    assert response.status_code == 200
    by_title = {incident.title: key for key, incident in corpus.items()}
    assert {by_title[title] for title in titles(response)} == expected


def test_results_are_newest_first_by_default_and_best_first_on_request(reporter):
    # given: the older one mentions the word three times
    older = make_incident(reporter, title="Smoke smoke", description="Smoke in the corridor.")
    newer = make_incident(reporter, title="Printer jam", description="A little smoke from the printer.")

    # when
    newest = api_search(reporter, "smoke", path="/api/incidents")
    relevant = api_search(reporter, "smoke", path="/api/incidents", ordering="relevance")

    # then
    assert titles(newest) == [newer.title, older.title]
    assert titles(relevant) == [older.title, newer.title]


def test_relevance_without_a_search_is_a_field_error(reporter):
    response = api_client(reporter).get("/api/incidents", {"ordering": "relevance"})
    assert response.status_code == 400
    assert response.json()["ordering"] == ["`relevance` needs a `search`."]


@pytest.mark.parametrize("ordering", ["-created_at", "created_at", "relevance"])
def test_pages_of_a_search_have_no_duplicate_and_no_gap(reporter, other, ordering):
    # given: 7 matches (some ranked alike, some not) among 10, from someone else
    wanted = [
        make_incident(other, title=f"Boiler noise {n}", description="boiler " * (n % 3 + 1)).title for n in range(7)
    ]
    for n in range(3):
        make_incident(other, title=f"Radiator {n}")
    client = api_client(reporter)

    # when: walked 3 at a time through the Link headers
    seen, url = [], "/api/publicIncidents"
    params = {"search": "boiler", "page_size": 3, "ordering": ordering}
    while url:
        response = client.get(url, params)
        assert response.status_code == 200
        seen += titles(response)
        link = response.get("Link", "")
        nxt = [part for part in link.split(", ") if part.endswith('rel="next"')]
        url, params = (urlparse(nxt[0].split(">")[0][1:])._replace(scheme="", netloc="").geturl() if nxt else ""), {}

    # then
    assert sorted(seen) == sorted(wanted)
    assert len(seen) == len(set(seen))


def test_relevance_pages_tell_nothing_of_incidents_the_caller_may_not_see(reporter, other, make_user):
    # given: two public matches, walked one a page by relevance
    make_team("security", members=[make_user("sue")])
    for n in range(2):
        make_incident(other, title=f"Zebra crossing {n}")

    def links():
        response = api_search(reporter, "zebra", page_size=1, ordering="relevance")
        assert response.status_code == 200
        return response.get("Link", ""), titles(response)

    before = links()

    # when: private incidents the caller may not see mention the word too
    for n in range(3):
        make_incident(other, title=f"Zebra {n}", description="zebra zebra", visibility=Visibility.PRIVATE)

    # then: the same page and the same cursor (it holds a row count, not the rank, which
    # is computed from word frequencies over every row)
    assert links() == before
    cursor = parse_qs(urlparse(before[0].split(">")[0][1:]).query)["cursor"][0]
    assert "p=" not in b64decode(cursor).decode()


def test_a_relevance_cursor_with_a_position_is_unknown(reporter, other):
    make_incident(other, title="Zebra crossing")
    forged = b64encode(b"o=0&p=1.5").decode()

    response = api_search(reporter, "zebra", ordering="relevance", cursor=forged)

    assert response.status_code == 404


def test_search_is_combined_with_visibility(reporter, other, make_user):
    # given: a private incident of a team neither user is in, and a public one
    make_team("security", members=[make_user("sue")])
    private = make_incident(other, title="Badge cloned", visibility=Visibility.PRIVATE)
    public = make_incident(other, title="Badge reader broken")
    staff = make_staff(make_user)

    # when / then: the ordinary user finds only the public one, on the API and the web
    assert titles(api_search(reporter, "badge")) == [public.title]
    web = api_client(reporter, auth="session").get("/incidents/public/", {"search": "badge"})
    assert public.title in web.content.decode() and private.title not in web.content.decode()
    assert set(titles(api_search(staff, "badge"))) == {private.title, public.title}


def test_search_is_combined_with_every_other_filter(reporter, other, staff):
    # given
    open_one = make_incident(other, title="Door alarm", severity="High")
    closed = make_incident(other, title="Door alarm again", severity="High")
    services.change_status(incident=closed, actor=staff, status=Status.CLOSED)
    make_incident(other, title="Door alarm low", severity="Low")

    # when
    response = api_search(reporter, "door alarm", status=Status.REPORTED, severity="High")

    # then
    assert titles(response) == [open_one.title]


def test_also_search_responses_finds_an_incident_by_a_response(reporter, other, staff):
    # given
    incident = make_incident(other, title="Strange noise", description="Floor 2.")
    services.add_response(incident=incident, author=staff, description="It was the ventilation fan.")

    # when
    without = api_search(reporter, "ventilation")
    with_responses = api_search(reporter, "ventilation", search_responses="true")
    web = api_client(reporter, auth="session").get(
        "/incidents/public/", {"search": "ventilation", "search_responses": "true"}
    )

    # then
    assert titles(without) == []
    assert titles(with_responses) == [incident.title]
    assert incident.title in web.content.decode()
    assert 'name="search_responses" value="true" id="id_search_responses" checked' in web.content.decode()


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_queries_never_break_the_api_or_the_web(reporter, other, text):
    # given
    make_incident(other, title="Gas leak")

    # when
    api = api_search(reporter, text)
    relevant = api_search(reporter, text, ordering="relevance")
    web = api_client(reporter, auth="session").get("/incidents/public/", {"search": text, "sort": "relevance"})

    # then: an answer, or a field error for what the field refuses (too long)
    assert api.status_code in (200, 400)
    assert relevant.status_code in (200, 400)
    assert web.status_code in (200, 400)
    if len(text) <= 100:
        assert api.status_code == relevant.status_code == web.status_code == 200


def test_the_web_list_says_which_words_were_left_out(reporter, other):
    make_incident(other, title="IT is down")
    response = api_client(reporter, auth="session").get("/incidents/public/", {"search": "it is"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "Left out of the search, so nothing matches: it, is" in page
    assert "0 incidents" in page


def test_web_relevance_sort(reporter, other):
    older = make_incident(other, title="Flood flood", description="Flood in the basement.")
    newer = make_incident(other, title="Dripping tap", description="Could flood later.")
    client = api_client(reporter, auth="session")

    newest = client.get("/incidents/public/", {"search": "flood"})
    relevant = client.get("/incidents/public/", {"search": "flood", "sort": "relevance"})

    assert [i.title for i in newest.context["page_obj"].object_list] == [newer.title, older.title]
    assert [i.title for i in relevant.context["page_obj"].object_list] == [older.title, newer.title]


# --- The index kept in step on every write path ---------------------------------------------


def found(user, text, **params) -> list[str]:
    return titles(api_search(user, text, path="/api/incidents", **params))


def test_web_report_and_edit_are_indexed(client, reporter):
    from .factories import response_team

    response_team()
    client.force_login(reporter)
    client.post("/incidents/new/", {"title": "Heron nesting", "description": "On the roof.", "severity": "Low"})
    incident = Incident.objects.get()
    assert found(reporter, "heron") == ["Heron nesting"]

    response = client.post(
        f"{incident.get_absolute_url()}edit/", {"title": "Stork nesting", "description": "On the roof."}
    )
    assert response.status_code == 302
    assert found(reporter, "heron") == []
    assert found(reporter, "stork") == ["Stork nesting"]


def test_web_response_is_indexed(client, reporter, other):
    incident = make_incident(other, title="Window cracked")
    client.force_login(reporter)
    client.post(f"{incident.get_absolute_url()}respond/", {"description": "Pigeon flew into it."})
    assert titles(api_search(reporter, "pigeon", search_responses="true")) == ["Window cracked"]


def test_api_create_and_patch_are_indexed(reporter):
    client = api_client(reporter)
    created = client.post(
        "/api/incidents", {"title": "Kettle sparks", "description": "Kitchen.", "severity": "Low"}, format="json"
    )
    assert created.status_code == 201
    assert found(reporter, "kettle") == ["Kettle sparks"]

    patched = client.patch(
        f"/api/incidents/{created.json()['incident_id']}", {"description": "Toaster too."}, format="json"
    )
    assert patched.status_code == 200
    assert found(reporter, "toaster") == ["Kettle sparks"]
    assert found(reporter, "kitchen") == []


def test_api_response_is_indexed(reporter, other):
    incident = make_incident(other, title="Fridge warm")
    response = api_client(reporter).post(
        f"/api/responses/{incident.incident_id}", {"description": "Compressor died."}, format="json"
    )
    assert response.status_code == 201
    assert titles(api_search(reporter, "compressor", search_responses="true")) == ["Fridge warm"]


def test_admin_add_change_and_inline_response_are_indexed(admin_client, reporter):
    from .factories import category_of, response_team
    from .test_admin import change_form_data, change_url

    category = category_of(response_team())
    added = admin_client.post(
        "/admin/incidents/incident/add/",
        {
            "title": "Walrus sighting",
            "description": "In the car park.",
            "status": Status.REPORTED,
            "severity": "Low",
            "visibility": Visibility.PUBLIC,
            "reporter": reporter.pk,
            "category": category.pk,
            **{
                f"{prefix}-{key}": value
                for prefix in ("responses", "events", "attachments")
                for key, value in (("TOTAL_FORMS", 0), ("INITIAL_FORMS", 0))
            },
        },
    )
    assert added.status_code == 302
    assert found(reporter, "walrus") == ["Walrus sighting"]

    incident = Incident.objects.get(title="Walrus sighting")
    data = change_form_data(admin_client.get(change_url(incident)))
    data.update({"title": "Seal sighting", "responses-TOTAL_FORMS": "1", "responses-0-description": "Mackerel."})
    changed = admin_client.post(change_url(incident), data)
    assert changed.status_code == 302
    assert found(reporter, "walrus") == []
    assert found(reporter, "seal") == ["Seal sighting"]
    assert found(reporter, "mackerel", search_responses="true") == ["Seal sighting"]


def test_seed_load_bulk_inserts_are_indexed(reporter):
    call_command(
        "seed_load", "--incidents", "30", "--users", "3", "--responders", "2", stdout=StringIO(), stderr=StringIO()
    )
    staff_view = Incident.objects.all()
    expected = set(staff_view.filter(title__icontains="leak").values_list("pk", flat=True))
    assert expected, "the seed has water leaks"
    assert set(search.matching(staff_view, "leak").values_list("pk", flat=True)) == expected
    replied = set(staff_view.filter(responses__description__icontains="supplier").values_list("pk", flat=True))
    assert set(search.matching(staff_view, '"supplier visit"', responses=True).values_list("pk", flat=True)) >= replied


def test_a_raw_update_and_delete_are_indexed_too(reporter):
    # The index is kept by the database (triggers / InnoDB), not by Python code.
    incident = make_incident(reporter, title="Otter in the pond")
    Incident.objects.filter(pk=incident.pk).update(title="Beaver in the pond")
    assert found(reporter, "otter") == []
    assert found(reporter, "beaver") == ["Beaver in the pond"]
    Incident.objects.filter(pk=incident.pk).delete()
    assert found(reporter, "beaver") == []


# --- The plan: the index, not a scan ---------------------------------------------------------


def table_accesses(node):
    """(table name, (access type, key)) for every table an EXPLAIN FORMAT=JSON reads."""
    if isinstance(node, dict):
        if "table_name" in node and "access_type" in node:
            yield node["table_name"] + f"#{id(node)}", (node["access_type"], node.get("key"))
        for value in node.values():
            yield from table_accesses(value)
    elif isinstance(node, list):
        for value in node:
            yield from table_accesses(value)


def plan_of(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "mysql":
            cursor.execute("EXPLAIN FORMAT=JSON " + sql, params)
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        return "\n".join(str(row[-1]) for row in cursor.fetchall())


def test_the_database_answers_a_search_from_the_full_text_index(reporter, other):
    # given: enough rows that a planner would not scan for fun
    for n in range(30):
        make_incident(other, title=f"Routine check {n}")
    make_incident(other, title="Needle found")
    if connection.vendor == "mysql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE TABLE incidents_incident, incidents_response")
    queryset = search.matching(Incident.objects.reported_by_others(reporter), "needle").newest_first()[:25]
    with_responses = search.matching(Incident.objects.all(), "needle", responses=True).newest_first()[:25]

    # when
    plan, plan_responses = plan_of(queryset), plan_of(with_responses)

    # then
    if connection.vendor == "mysql":
        for text, index in ((plan, "incident_fulltext"), (plan_responses, "response_fulltext")):
            accesses = dict(table_accesses(json.loads(text)))
            # Base tables are read through the full-text index or by primary key, never
            # scanned (`<derived>` / `<subquery>` are the small materialized matches).
            assert accesses, text
            for table, (access, _key) in accesses.items():
                if table.startswith("incidents_"):
                    assert access not in ("ALL", "index"), text
            assert any(key == index and access == "fulltext" for access, key in accesses.values()), text
    else:
        assert "VIRTUAL TABLE INDEX" in plan
        assert "SCAN incidents_incident" not in plan.replace("SCAN incidents_incident_fts", "")
        assert "SCAN incidents_incident " not in plan_responses + " "
    assert list(queryset.values_list("title", flat=True)) == ["Needle found"]


def test_after_a_migrate_lost_triggers_come_back_and_the_index_catches_up(reporter):
    # given: on SQLite, a table rebuild by some later migration dropped a trigger (on
    # MariaDB the FULLTEXT index belongs to the table and survives any ALTER)
    from incidents.apps import keep_search_index

    incident = make_incident(reporter, title="Mole in the lawn")
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER incidents_incident_fts_update")
        Incident.objects.filter(pk=incident.pk).update(title="Badger in the lawn")
        assert found(reporter, "badger") == []  # the write went unindexed
    else:
        Incident.objects.filter(pk=incident.pk).update(title="Badger in the lawn")

    # when
    keep_search_index(sender=None, using="default")

    # then
    assert found(reporter, "badger") == ["Badger in the lawn"]
    Incident.objects.filter(pk=incident.pk).update(title="Vole in the lawn")
    assert found(reporter, "vole") == ["Vole in the lawn"]
