"""Sign in with a username or an e-mail address."""

import unicodedata

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend

from .models import login_key

# Long enough for any e-mail address; anything longer names no account.
MAX_LOGIN_LENGTH = 254


def find_account(login: str):
    """The account a sign-in's login names, or None: the same on SQLite and MariaDB.

    In order: the username exactly (after NFKC, as Django stores it); else the username
    in any case, if only one account has it; else, when the login has an "@", the e-mail
    address (`normalize_email`). So an account whose username looks like somebody else's
    address cannot shadow it. The database only narrows the candidates (its collation may
    ignore accents, or only ASCII case); the comparison is made here.
    """
    User = get_user_model()
    users = User._default_manager
    if len(login) > MAX_LOGIN_LENGTH:
        return None
    login = unicodedata.normalize("NFKC", login).strip()
    if not login:
        return None
    for user in users.filter(username=login):
        if user.username == login:
            return user
    key = login_key(login)
    same_but_case = [user for user in users.filter(username__iexact=login) if login_key(user.username) == key]
    if len(same_but_case) == 1:
        return same_but_case[0]
    if "@" in login:
        return users.filter(email=key).first()
    return None


class UsernameOrEmailBackend(ModelBackend):
    """Django's model backend, also accepting the account's e-mail address as the login
    (`find_account` says which account a login names).

    Unknown logins still pay for one password hash, like Django's backend, so timing does
    not reveal which accounts exist.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        User = get_user_model()
        if username is None:
            username = kwargs.get(User.USERNAME_FIELD)
        if username is None or password is None:
            return None
        user = find_account(str(username))
        if user is None:
            User().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
