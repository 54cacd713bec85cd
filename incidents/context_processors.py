"""What every page's navigation needs to know about the user's role."""

from django.utils.functional import SimpleLazyObject

from . import permissions


def roles(request):
    # Lazy, and answered from the membership cached on the user: free on pages that
    # already asked (every list does), one query on the others.
    return {"works_incidents": SimpleLazyObject(lambda: permissions.is_responder(request.user))}
