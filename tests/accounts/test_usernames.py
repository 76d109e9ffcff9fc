"""Usernames: unique whatever their case (a database constraint on the folded name, so that
concurrent registrations cannot both win), NFKC-normalised, and written in one script (a
Cyrillic a, U+0430, among Latin letters is refused). Real requests, real database."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from rest_framework.test import APIClient

from tests.accounts.concurrency import race
from tests.factories import PASSWORD, UserFactory

REGISTER = "/api/v1/auth/register/"
CONCURRENT = 8
FULLWIDTH_GINA = "\uff47\uff49\uff4e\uff41"  # NFKC: "gina"


def register(username: str, client: APIClient | None = None):
    return (client or APIClient()).post(REGISTER, {"username": username, "password": PASSWORD})


@pytest.mark.django_db(transaction=True)
def test_concurrent_registrations_of_one_name_in_any_case_create_one_account():
    names = ["gina", "Gina", "GINA", "gInA", "GiNa", "ginA", "gINA", "Gina"][:CONCURRENT]
    clients = [APIClient(REMOTE_ADDR=f"10.7.0.{i}") for i in range(CONCURRENT)]
    responses = race([lambda n=n, c=c: register(n, c) for n, c in zip(names, clients, strict=True)])
    assert not [r for r in responses if isinstance(r, Exception)], responses
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [400] * (CONCURRENT - 1), [(r.status_code, r.content[:200]) for r in responses]
    for resp in responses:
        if resp.status_code == 400:
            assert "username" in resp.json(), resp.content
    users = get_user_model().objects.annotate(folded=Lower("username")).filter(folded="gina")
    assert users.count() == 1


@pytest.mark.django_db
class TestRegistration:
    @pytest.mark.parametrize("taken", ["Gina", "GINA", "gina"])
    def test_a_name_taken_in_another_case_is_400_naming_username(self, anon_client, taken):
        UserFactory(username="gina")
        resp = register(taken, anon_client)
        assert resp.status_code == 400
        assert "username" in resp.json()
        assert get_user_model().objects.count() == 1

    def test_names_are_nfkc_normalised(self, anon_client):
        resp = register(FULLWIDTH_GINA, anon_client)
        assert resp.status_code == 201, resp.content
        assert resp.json()["username"] == "gina"
        assert get_user_model().objects.get().username == "gina"
        assert register("GINA", anon_client).status_code == 400
        assert register(FULLWIDTH_GINA, anon_client).status_code == 400

    @pytest.mark.parametrize(
        "name",
        [
            "g\u0430by",  # Cyrillic a among Latin letters
            "\u0440aypal",  # Cyrillic er (looks like p)
            "\u03bfscar",  # Greek omicron
            "admin\u0456",  # Cyrillic Ukrainian i
            "ab\u0661",  # an Arabic-Indic digit one after Latin letters
        ],
        ids=["cyrillic-a", "cyrillic-er", "greek-omicron", "cyrillic-i", "arabic-digit"],
    )
    def test_mixed_script_names_are_400_naming_username(self, anon_client, name):
        resp = register(name, anon_client)
        assert resp.status_code == 400, resp.content
        assert "username" in resp.json()
        assert "script" in str(resp.json()["username"])
        assert not get_user_model().objects.exists()

    @pytest.mark.parametrize(
        "name",
        ["gaby", "josé", "Zoë_99", "габи", "Ελένη", "さくら", "山田さくら", "김민준", "ada.lovelace+1@x-y"],
    )
    def test_names_in_one_script_are_accepted(self, anon_client, name):
        resp = register(name, anon_client)
        assert resp.status_code == 201, resp.content
        assert get_user_model().objects.filter(username=name).exists()


@pytest.mark.django_db
def test_the_database_refuses_a_second_name_differing_only_in_case():
    UserFactory(username="gina")
    with pytest.raises(IntegrityError), transaction.atomic():
        get_user_model().objects.create(username="GINA")
