"""Static files (admin CSS, the API docs' assets) are served by the app itself with DEBUG off,
as under gunicorn: WhiteNoise, from the apps' folders without a collection, and from
STATIC_ROOT with hashed names once `collectstatic` ran (as in the Docker image)."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from django.test import Client, override_settings

STYLESHEETS = re.compile(r"""<link[^>]+href="(/static/[^"]+\.css)\"""")


def served(client: Client, url: str, **headers) -> tuple[int, bytes, object]:
    response = client.get(url, headers=headers)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response.status_code, body, response


def admin_stylesheets(client: Client) -> list[str]:
    page = client.get("/admin/login/")
    assert page.status_code == 200
    urls = STYLESHEETS.findall(page.content.decode())
    assert any("admin/css/base" in url for url in urls), urls
    return urls


@pytest.mark.django_db
@override_settings(DEBUG=False)
def test_admin_css_is_served_with_debug_off():
    client = Client()
    status, body, _ = served(client, "/static/admin/css/base.css")
    assert status == 200
    assert b"body" in body
    for url in admin_stylesheets(client):
        status, body, _ = served(client, url)
        assert status == 200, url
        assert body, url


@pytest.mark.django_db
@override_settings(DEBUG=False)
def test_unknown_static_file_is_404():
    assert Client().get("/static/admin/css/no-such-file.css").status_code == 404


@pytest.mark.django_db
def test_collected_files_are_served_hashed_compressed_and_cached(tmp_path):
    """The production path: `collectstatic` with the compressed manifest storage, then WhiteNoise
    serving only STATIC_ROOT (no finders)."""
    collected = {
        "STATIC_ROOT": tmp_path / "static",
        "STORAGES": {
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
        },
        "WHITENOISE_USE_FINDERS": False,
    }
    with override_settings(**collected):
        call_command("collectstatic", interactive=False, verbosity=0)
        assert (tmp_path / "static" / "staticfiles.json").is_file()
        with override_settings(DEBUG=False):
            client = Client()
            urls = admin_stylesheets(client)
            assert all(re.search(r"\.[0-9a-f]{12}\.css$", url) for url in urls), urls
            for url in urls:
                status, _, response = served(client, url, accept_encoding="gzip")
                assert status == 200, url
                assert response["Content-Encoding"] == "gzip"
                assert "immutable" in response["Cache-Control"]
            docs = client.get("/api/docs/").content.decode()
            bundle = re.search(r'src="(/static/drf_spectacular_sidecar/[^"]+bundle\.[0-9a-f]{12}\.js)"', docs)
            assert bundle, docs
            assert served(client, bundle.group(1))[0] == 200
