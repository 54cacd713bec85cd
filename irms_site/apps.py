from django.contrib.admin.apps import AdminConfig


class IRMSAdminConfig(AdminConfig):
    default_site = "irms_site.admin.IRMSAdminSite"
