from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "ketamine_clinic.web.accounts"
    label = "accounts"
    verbose_name = "Sites and staff"
