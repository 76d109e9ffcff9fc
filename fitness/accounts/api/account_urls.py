"""``/api/v1/account/``: the caller's profile, export and deletion."""

from django.urls import path

from .views import AccountExportView, AccountView

urlpatterns = [
    path("", AccountView.as_view(), name="account"),
    path("export/", AccountExportView.as_view(), name="account-export"),
]
