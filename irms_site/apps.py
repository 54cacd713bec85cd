from django.contrib.admin.apps import AdminConfig


class IRMSAdminConfig(AdminConfig):
    default_site = "irms_site.admin.IRMSAdminSite"

    def ready(self):
        super().ready()
        # The project's own system checks register on import (this is irms_site's only app).
        from . import checks  # noqa: F401
