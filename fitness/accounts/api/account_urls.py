"""``/api/v1/account/``: the caller's profile, export, password and deletion."""

from django.urls import path

from .views import AccountExportView, AccountView, PasswordView

urlpatterns = [
    path("", AccountView.as_view(), name="account"),
    path("export/", AccountExportView.as_view(), name="account-export"),
    path("password/", PasswordView.as_view(), name="account-password"),
]
