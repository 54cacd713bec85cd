def test_home(client, db):
    r = client.get("/")
    assert r.status_code == 200
    r = client.get("/dashboard/")
    assert r.status_code == 302 and "/accounts/login/?next=/dashboard/" in r["Location"]
    for url in ["/accounts/login/", "/accounts/register/", "/accounts/password_reset/", "/accounts/logout/", "/admin/login/"]:
        assert client.get(url).status_code == 200, url
    assert client.get("/admin/").status_code == 302
