"""The API docs pages (Swagger UI at /api/docs/, Redoc at /api/redoc/) work with no network:
every URL the page references is on the site itself, and each of them is served."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from django.test import Client, override_settings

HOST = "testserver"
#: Absolute or protocol-relative URLs anywhere in the page (inline scripts and styles too).
ABSOLUTE_URL = re.compile(r"""(?:\b[a-z][a-z0-9+.-]*:)?//[^\s"'<>()\\]+""", re.IGNORECASE)
#: ``url(...)`` in CSS, ``url: "..."`` in Swagger UI's inline configuration, Redoc.init("...").
SCRIPT_URL = re.compile(r"""(?:\burl\s*[:(]\s*|Redoc\.init\(\s*)["']?([^"')\s,]+)""")


class References(HTMLParser):
    """Every URL in an attribute that holds one (src, href, *url*, srcset, ...)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in ("src", "href", "action", "poster", "data") or "url" in name:
                self.urls.append(value)
            elif name == "srcset":
                self.urls += [part.split()[0] for part in value.split(",") if part.strip()]
            elif name == "style":
                self.text.append(value)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def references(html: str) -> list[str]:
    parser = References()
    parser.feed(html)
    urls = list(parser.urls)
    for text in parser.text:
        urls += SCRIPT_URL.findall(text)
    urls += ABSOLUTE_URL.findall(html)
    return urls


def is_same_host(url: str) -> bool:
    parts = urlsplit(url)
    return not parts.netloc or parts.netloc == HOST


def get_body(client: Client, url: str) -> tuple[int, bytes]:
    response = client.get(url)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response.status_code, body


@pytest.mark.django_db
@override_settings(DEBUG=False)
@pytest.mark.parametrize(("page", "assets"), [("/api/docs/", 3), ("/api/redoc/", 1)])
def test_docs_page_references_only_its_own_host_and_every_reference_is_served(page, assets):
    client = Client()
    status, body = get_body(client, page)
    assert status == 200
    html = body.decode()
    urls = references(html)
    assert urls, f"{page} references nothing?"
    external = sorted({url for url in urls if not is_same_host(url)})
    assert not external, f"{page} loads from other hosts: {external}"

    static = [url for url in urls if urlsplit(url).path.startswith("/static/")]
    # Swagger UI: its CSS, bundle and standalone preset (plus the favicon); Redoc: its bundle.
    assert len(set(static)) >= assets, static
    assert any("drf_spectacular_sidecar" in url for url in static), static
    for url in sorted(set(urls)):
        if url.startswith(("data:", "#")):
            continue
        status, content = get_body(client, urljoin(f"http://{HOST}{page}", url))
        assert status == 200, f"{page} references {url}, answered {status}"
        assert content, f"{url} is empty"


def test_reference_checker_sees_external_hosts():
    html = """<html><head><link rel="stylesheet" href="https://fonts.example.com/css">
    <style>body { background: url(//cdn.example.com/x.png) }</style></head>
    <body><script src="/static/a.js"></script><script>ui({url: "https://cdn.example.org/s.json"})</script></body></html>"""
    external = {url for url in references(html) if not is_same_host(url)}
    assert {"https://fonts.example.com/css", "//cdn.example.com/x.png", "https://cdn.example.org/s.json"} <= external
    assert "/static/a.js" in references(html)
