"""Site-wide middleware."""

from django.contrib.auth import middleware as auth_middleware


class LoginRequiredMiddleware(auth_middleware.LoginRequiredMiddleware):
    """Deny by default: every view needs a signed-in user unless marked `login_not_required`.

    REST framework views are exempt because they authenticate for themselves (session or
    token) and must answer 401 with a JSON body, never a redirect to the sign-in page.
    """

    def process_view(self, request, view_func, view_args, view_kwargs):
        if getattr(view_func, "cls", None) is not None and hasattr(view_func.cls, "authentication_classes"):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)
