"""Which URLs a webhook may use: every address of the host is checked (no database)."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from fitness.webhooks import addresses


def fake_dns(monkeypatch, table: dict[str, list[str]]) -> None:
    """``getaddrinfo`` answering from ``table`` (host -> addresses); literal IPs answer themselves."""

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):  # noqa: A002 - socket's names
        found = table.get(host)
        if found is None:
            try:
                found = [str(ipaddress.ip_address(host))]
            except ValueError:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in found]

    monkeypatch.setattr(addresses.socket, "getaddrinfo", getaddrinfo)


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://127.0.0.1/hook", "loopback"),
        ("http://127.1.2.3:8080/hook", "loopback"),
        ("https://localhost/hook", "loopback"),
        ("http://LOCALHOST./hook", "loopback"),
        ("http://2130706433/hook", "loopback"),  # 127.0.0.1 written as one number
        ("http://[::1]:8000/hook", "loopback"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),  # IPv4-mapped
        ("http://10.0.0.8/hook", "private"),
        ("http://172.16.5.4/hook", "private"),
        ("http://192.168.1.10/hook", "private"),
        ("http://[fd12:3456::1]/hook", "private"),
        ("http://[2002:a00:1::]/hook", "private"),  # 6to4 of 10.0.0.1
        ("http://[64:ff9b::a00:1]/hook", "private"),  # NAT64 of 10.0.0.1
        ("http://169.254.169.254/latest/meta-data/", "link-local"),  # cloud metadata
        ("http://[fe80::1]/hook", "link-local"),
        ("http://224.0.0.1/hook", "multicast"),
        ("http://[ff02::1]/hook", "multicast"),
        ("http://0.0.0.0/hook", "unspecified"),
        ("http://240.0.0.1/hook", "reserved"),
        ("http://100.64.0.1/hook", "non-public"),  # carrier-grade NAT
        ("http://192.0.2.1/hook", "private"),  # documentation range
    ],
)
def test_inside_addresses_are_refused(url, kind):
    with pytest.raises(addresses.URLError) as exc:
        addresses.resolve(url, allow_private=False)
    assert f"{kind} address" in exc.value.message
    assert not exc.value.transient


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hook", "http://[::1]/hook", "http://10.0.0.8/hook"])
def test_private_addresses_are_allowed_when_the_setting_says_so(url):
    target = addresses.resolve(url, allow_private=True)
    assert target.addresses


def test_public_literal_addresses_pass():
    target = addresses.resolve("https://8.8.8.8/hooks/x?a=1&b=2", allow_private=False)
    assert (target.scheme, target.host, target.port, target.path) == ("https", "8.8.8.8", 443, "/hooks/x?a=1&b=2")
    assert target.addresses == ("8.8.8.8",)
    assert target.host_header == "8.8.8.8"
    v6 = addresses.resolve("http://[2001:4860:4860::8888]:8080", allow_private=False)
    assert (v6.path, v6.host_header) == ("/", "[2001:4860:4860::8888]:8080")


def test_every_address_of_the_name_is_checked(monkeypatch):
    fake_dns(
        monkeypatch,
        {
            "hooks.example.com": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
            "mixed.example.com": ["93.184.215.14", "10.1.2.3"],
            "mixed6.example.com": ["93.184.215.14", "::1"],
        },
    )
    target = addresses.resolve("https://Hooks.Example.com/in", allow_private=False)
    assert target.host == "hooks.example.com"
    assert target.addresses == ("93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c")
    for host, inside in [("mixed.example.com", "10.1.2.3"), ("mixed6.example.com", "::1")]:
        with pytest.raises(addresses.URLError) as exc:
            addresses.resolve(f"https://{host}/in", allow_private=False)
        assert f"{host!r} resolves to a" in exc.value.message
        assert inside not in exc.value.message  # a name's inside address is not told


def test_an_internationalised_name_is_looked_up_and_sent_as_idna(monkeypatch):
    fake_dns(monkeypatch, {"xn--bcher-kva.example": ["93.184.215.14"]})
    target = addresses.resolve("https://Bücher.example/hook", allow_private=False)
    assert (target.host, target.host_header) == ("xn--bcher-kva.example", "xn--bcher-kva.example")


def test_a_name_that_does_not_resolve_is_a_transient_error(monkeypatch):
    fake_dns(monkeypatch, {})
    with pytest.raises(addresses.UnresolvableHostError) as exc:
        addresses.resolve("https://nowhere.invalid/hook", allow_private=False)
    assert exc.value.transient
    assert "cannot be resolved" in exc.value.message


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://8.8.8.8/hook", "https:// or http://"),
        ("javascript:alert(1)", "https:// or http://"),
        ("8.8.8.8/hook", "https:// or http://"),
        ("https:///hook", "no host"),
        ("https://user:pw@8.8.8.8/hook", "user name or password"),
        ("https://8.8.8.8:99999/hook", "port"),
        ("https://8.8.8.8/ho ok", "spaces"),
        ("https://8.8.8.8/hook\r\nX-Evil: 1", "control characters"),
        ("", "enter a URL"),
        ("http://[::1/hook", "host is not valid"),
        ("http://[not-an-ip]/hook", "host is not valid"),
        ("http://a..b/hook", "not a valid name"),
    ],
)
def test_malformed_urls_are_refused(url, message):
    with pytest.raises(addresses.URLError) as exc:
        addresses.resolve(url, allow_private=True)
    assert message in exc.value.message
