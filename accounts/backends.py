"""Sign in with a username or an e-mail address."""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend

from .models import normalize_email


class UsernameOrEmailBackend(ModelBackend):
    """Django's model backend, also accepting the account's e-mail address as the login.

    A username match wins over an e-mail match, so an account whose username looks like
    somebody else's address cannot shadow it. Unknown logins still pay for one password
    hash, like Django's backend, so timing does not reveal which accounts exist.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        User = get_user_model()
        if username is None:
            username = kwargs.get(User.USERNAME_FIELD)
        if username is None or password is None:
            return None
        user = User._default_manager.filter(username=username).first()
        if user is None and "@" in username:
            user = User._default_manager.filter(email=normalize_email(username)).first()
        if user is None:
            User().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
