"""Who an account is: usernames in their NFKC spelling and no look-alike of another's,
e-mail addresses unique exactly (after lower case and NFC) on SQLite and MariaDB alike,
and sign-in finding the same account on both."""

import unicodedata

import pytest
from django.db import connection
from django.test import Client

from accounts import services
from accounts.forms import QueuedPasswordResetForm
from accounts.models import User, normalize_email, usernames_look_alike

NFC_ADDRESS = "carol@ex\u00e4mple.org"  # ä, one code point
NFD_ADDRESS = "carol@exa\u0308mple.org"  # a + combining diaeresis


def register(client, username="carol", email="carol@example.org", password="correct-horse-battery-42"):
    data = {"username": username, "email": email, "password1": password, "password2": password}
    return client.post("/accounts/register/", data)


# --- Usernames ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lookalike",
    [
        pytest.param("\u0430dmin", id="cyrillic-a"),
        pytest.param("adm\u0131n", id="dotless-i"),
        pytest.param("\u0410DMIN", id="cyrillic-capital-a"),
        pytest.param("admIn".replace("I", "\u0406"), id="cyrillic-capital-i"),
        pytest.param("\uff41\uff44\uff4d\uff49\uff4e", id="fullwidth"),
        pytest.param("Admin", id="other-case"),
    ],
)
def test_registration_refuses_a_look_alike_of_an_existing_username(client, make_user, lookalike):
    # given
    make_user("admin")

    # when
    response = register(client, username=lookalike)

    # then
    assert response.status_code == 400
    assert list(response.context["form"].errors) == ["username"]
    assert User.objects.count() == 1


@pytest.mark.parametrize("lookalike", ["\u0430dmin", "adm\u0131n"], ids=["cyrillic-a", "dotless-i"])
def test_the_look_alike_error_says_why(client, make_user, lookalike):
    # given
    make_user("admin")

    # when
    response = register(client, username=lookalike)

    # then: refused, saying why. (MariaDB's accent-insensitive collation already sees
    # `admın` as `admin` itself, so there it is the plain "already exists" refusal.)
    errors = response.context["form"].errors["username"]
    assert errors in (
        ["This username looks too much like an existing one. Choose another."],
        ["A user with that username already exists."],
    )
    if connection.vendor != "mysql" or lookalike == "\u0430dmin":
        assert errors == ["This username looks too much like an existing one. Choose another."]
    assert User.objects.count() == 1


def test_registration_stores_a_fullwidth_username_in_its_nfkc_spelling(client, db):
    # when
    response = register(client, username="\uff43\uff41\uff52\uff4f\uff4c")

    # then
    assert response.status_code == 302
    assert User.objects.get().username == "carol"


@pytest.mark.parametrize(
    ("first", "second", "alike"),
    [
        ("admin", "\u0430dmin", True),
        ("admin", "adm\u0131n", True),
        ("paypal", "paypaI", True),
        ("bob1", "bobl", True),
        ("admin", "ADMIN", True),
        ("mail", "mall", False),
        ("alice", "alicia", False),
        ("rob", "bob", False),
        ("admin", "admins", False),
    ],
)
def test_which_usernames_look_alike(first, second, alike):
    # when / then
    assert usernames_look_alike(first, second) is alike
    assert usernames_look_alike(second, first) is alike


def test_different_names_register_side_by_side(client, make_user):
    # given
    make_user("alice")

    # when
    response = register(client, username="alicia")

    # then
    assert response.status_code == 302


@pytest.fixture
def superuser_client(make_user):
    client = Client()
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    return client


def test_the_admin_refuses_to_add_a_look_alike(superuser_client, make_user, password):
    # given
    make_user("admin")
    data = {
        "username": "\u0430dmin",
        "email": "other@example.org",
        "usable_password": "true",
        "password1": password,
        "password2": password,
    }

    # when
    response = superuser_client.post("/admin/accounts/user/add/", data)

    # then
    assert response.status_code == 200
    assert "looks too much like an existing one" in response.content.decode()
    assert not User.objects.filter(email="other@example.org").exists()


def test_the_admin_refuses_to_rename_a_user_to_a_look_alike(superuser_client, make_user):
    # given
    make_user("admin")
    bob = make_user("bob")

    # when
    response = superuser_client.post(
        f"/admin/accounts/user/{bob.pk}/change/",
        {
            "username": "adm\u0131n",
            "email": bob.email,
            "is_active": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )

    # then
    assert response.status_code == 200
    assert "looks too much like an existing one" in response.content.decode()
    bob.refresh_from_db()
    assert bob.username == "bob"


def test_an_existing_look_alike_pair_does_not_stop_either_user_changing_their_address(make_user):
    # given: two accounts from before the rule
    make_user("admin")
    lookalike = make_user("\u0430dmin")

    # when
    services.change_email(user=lookalike, email="new@example.org")

    # then
    lookalike.refresh_from_db()
    assert lookalike.email == "new@example.org"


def test_sign_in_takes_a_username_in_any_case_on_every_database(client, make_user, password):
    # given
    alice = make_user("alice")

    # when
    response = client.post("/accounts/login/", {"username": "ALICE", "password": password})

    # then
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(alice.pk)


def test_sign_in_does_not_take_an_accented_or_look_alike_username(make_user, password):
    # given: MariaDB's default collation would call these "alice"
    make_user("alice")

    # when
    answers = [
        Client().post("/accounts/login/", {"username": login, "password": password})
        for login in ("alic\u00e9", "\u0430lice")
    ]

    # then
    assert [response.status_code for response in answers] == [400, 400]


# --- E-mail addresses -----------------------------------------------------------------


def test_normalize_email_trims_lower_cases_and_composes():
    # when / then
    assert normalize_email("  Carol@EXA\u0308MPLE.org ") == NFC_ADDRESS
    assert unicodedata.is_normalized("NFC", normalize_email(NFD_ADDRESS))


def test_an_address_with_an_accent_and_one_without_are_different_accounts(db):
    # given
    assert register(Client(), username="squatter", email=NFC_ADDRESS).status_code == 302

    # when: the real owner of the address without the accent
    response = register(Client(), username="carol", email="carol@example.org")

    # then
    assert response.status_code == 302
    assert sorted(User.objects.values_list("email", flat=True)) == ["carol@example.org", NFC_ADDRESS]


def test_nfd_and_nfc_spellings_of_an_address_are_one_account(db, password):
    # given: registered with the decomposed spelling
    assert register(Client(), username="carol", email=NFD_ADDRESS).status_code == 302

    # when
    again = register(Client(), username="carol2", email=NFC_ADDRESS)
    sign_ins = [
        Client().post("/accounts/login/", {"username": address, "password": password})
        for address in (NFC_ADDRESS, NFD_ADDRESS, NFD_ADDRESS.upper())
    ]

    # then
    assert User.objects.get().email == NFC_ADDRESS
    assert again.status_code == 400
    assert list(again.context["form"].errors) == ["email"]
    assert [response.status_code for response in sign_ins] == [302, 302, 302]


def test_the_token_endpoint_takes_either_spelling_of_an_address(db, make_user, password):
    # given
    make_user("carol", email=NFC_ADDRESS)

    # when
    response = Client().post(
        "/api/auth/token", {"username": NFD_ADDRESS, "password": password}, content_type="application/json"
    )

    # then
    assert response.status_code == 200


def test_password_reset_finds_an_address_typed_in_another_case(make_user):
    # given
    carol = make_user("carol", email="carol@example.org")

    # when
    found = list(QueuedPasswordResetForm().get_users("Carol@EXAMPLE.org"))

    # then
    assert found == [carol]


@pytest.mark.parametrize(
    "lookup",
    [
        pytest.param({"email__iexact": "Carol@EXAMPLE.org"}, id="iexact"),
        pytest.param({"email__icontains": "ROL@EXAM"}, id="icontains"),
        pytest.param({"email__istartswith": "CAROL@"}, id="istartswith"),
        pytest.param({"email__iendswith": "@Example.ORG"}, id="iendswith"),
    ],
)
def test_case_insensitive_address_lookups_ignore_case_on_every_database(make_user, lookup):
    # given
    carol = make_user("carol", email="carol@example.org")
    make_user("dave", email="dave@example.net")

    # when
    found = list(User.objects.filter(**lookup))

    # then
    assert found == [carol]


def test_the_admin_finds_a_user_by_an_address_typed_in_another_case(superuser_client, make_user):
    # given
    make_user("carol", email="carol@example.org")

    # when
    response = superuser_client.get("/admin/accounts/user/", {"q": "CAROL@Example"})

    # then
    assert [user.username for user in response.context["cl"].result_list] == ["carol"]
