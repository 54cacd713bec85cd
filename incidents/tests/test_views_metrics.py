"""/metrics/ and its CSV: who may see them, the filter form, the charts' data and tables."""

import csv
import io
import json
import re

import pytest

from incidents.models import Severity

from .factories import category_of, make_incident


@pytest.fixture
def signed_in(client):
    def sign_in(user):
        client.force_login(user)
        return client

    return sign_in


def test_a_reporter_gets_a_clear_403_page(signed_in, reporter):
    response = signed_in(reporter).get("/metrics/")

    assert response.status_code == 403
    assert "Metrics are for team members and staff." in response.content.decode()


def test_signed_out_visitors_are_sent_to_sign_in(client, db):
    response = client.get("/metrics/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_page_shows_figures_charts_data_and_tables(signed_in, reporter, fred, facilities):
    make_incident(reporter, title="Boiler", category=category_of(facilities), severity=Severity.CRITICAL)

    response = signed_in(fred).get("/metrics/")

    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(r'data-metric="reported">1<', html)
    assert 'id="chart-weekly"' in html and 'id="chart-times"' in html
    assert "chart.umd.min.js" in html and "js/metrics.js" in html
    data = json.loads(re.search(r'<script id="metrics-data" type="application/json">(.*?)</script>', html).group(1))
    assert data["times"]["labels"] == ["Critical", "High", "Medium", "Low"]
    assert sum(data["weekly"]["reported"]) == 1
    assert html.count("data-metrics-table=") == 6
    ticked = re.findall(r'<input type="checkbox" name="team" value="([^"]+)"[^>]*checked', html)
    assert ticked == ["facilities"]  # fred's team, by default


def test_no_inline_script_on_the_page(signed_in, staff):
    html = signed_in(staff).get("/metrics/").content.decode()

    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag


def test_a_bad_period_shows_the_form_with_its_error_and_no_figures(signed_in, staff):
    response = signed_in(staff).get("/metrics/?from=2026-06-30&to=2026-06-01")

    assert response.status_code == 400
    html = response.content.decode()
    assert "must not be before" in html
    assert "data-metric=" not in html
    assert "metrics-data" not in html


def test_the_csv_has_every_table_and_escapes_formulas(signed_in, reporter, staff, facilities):
    make_incident(reporter, title='=HYPERLINK("http://evil")', category=category_of(facilities))

    response = signed_in(staff).get("/metrics/export.csv?team=facilities")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="irms-metrics-')
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    captions = [rows[i][0] for i in range(len(rows)) if i == 0 or (rows[i - 1] == [] and rows[i])]
    assert [c.split(",")[0] for c in captions] == [
        "Summary", "By severity", "By team", "Weekly", "Top categories", "Oldest open",
    ]  # fmt: skip
    assert ["reported", "1"] in rows
    assert any(row[1:2] == ['\'=HYPERLINK("http://evil")'] for row in rows)


def test_the_csv_refuses_a_bad_query_too(signed_in, staff):
    assert signed_in(staff).get("/metrics/export.csv?severity=Nope").status_code == 400


def test_the_csv_is_refused_to_reporters(signed_in, reporter):
    assert signed_in(reporter).get("/metrics/export.csv").status_code == 403


def test_the_navigation_links_metrics_for_responders_only(signed_in, reporter, fred, facilities):
    assert 'href="/metrics/"' in signed_in(fred).get("/dashboard/").content.decode()
    assert 'href="/metrics/"' not in signed_in(reporter).get("/dashboard/").content.decode()
