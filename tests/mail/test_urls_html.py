"""Link extraction from text (plain and defanged), host normalisation and HTML reading."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postwise.mail.html import read_html
from postwise.mail.message import Url
from postwise.mail.urls import MAX_URLS, host_of, urls_in_text

FAST = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# ----------------------------------------------------------------------------- host_of


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("HTTP://WWW.Example.COM:8080/a", "www.example.com"),
        ("https://user:pw@Host.Example:99/", "host.example"),
        ("http://paypal.com@evil.example/x", "evil.example"),
        ("www.example.org/path", "www.example.org"),
        ("http://example.com./", "example.com"),
        ("http://%65vil.example/", "evil.example"),
        ("http://192.0.2.1/x", "192.0.2.1"),
        ("https://xn--bcher-kva.example/", "xn--bcher-kva.example"),
        ("http://[::1", ""),
        ("mailto:someone@example.com", ""),
        ("not a url", ""),
        ("", ""),
    ],
)
def test_host_of(url: str, host: str) -> None:
    assert host_of(url) == host


@FAST
@given(st.text(max_size=300))
def test_host_of_never_raises(text: str) -> None:
    host = host_of(text)
    assert isinstance(host, str)
    assert host == host.lower()
    assert len(host) <= 253


# ----------------------------------------------------------------------------- urls_in_text


def test_plain_links_with_trailing_punctuation_and_duplicates() -> None:
    text = (
        "See https://a.example.com/x, and (https://b.example.com/y). "
        "Again https://a.example.com/x! Or www.c.example.com/page."
    )
    urls = urls_in_text(text)
    assert [(u.url, u.host, u.source) for u in urls] == [
        ("https://a.example.com/x", "a.example.com", "text"),
        ("https://b.example.com/y", "b.example.com", "text"),
        ("www.c.example.com/page", "www.c.example.com", "text"),
    ]
    assert all(u.anchor_text == "" for u in urls)


def test_source_argument_is_used_for_plain_links() -> None:
    (url,) = urls_in_text("go https://x.example.com/", source="html")
    assert url.source == "html"


@pytest.mark.parametrize(
    ("text", "url", "host"),
    [
        ("hxxp://bad.example/login", "http://bad.example/login", "bad.example"),
        ("HXXPS://Pay.Example.com/a", "https://Pay.Example.com/a", "pay.example.com"),
        ("http[:]//c.example.com/z", "http://c.example.com/z", "c.example.com"),
        ("evil[.]example[.]net", "http://evil.example.net", "evil.example.net"),
        ("shop(dot)example(dot)org", "http://shop.example.org", "shop.example.org"),
        ("login [dot] example [dot] com", "http://login.example.com", "login.example.com"),
        (
            "hxxps://login[.]example[.]com/path",
            "https://login.example.com/path",
            "login.example.com",
        ),
    ],
)
def test_obfuscated_links(text: str, url: str, host: str) -> None:
    found = urls_in_text(f"please visit {text} today")
    # the scheme is case-insensitive; the rest of the link is kept as written
    assert [(u.url.lower(), u.host, u.source) for u in found] == [(url.lower(), host, "obfuscated")]
    assert found[0].url.split("://", 1)[1] == url.split("://", 1)[1]


@pytest.mark.parametrize(
    ("text", "host"), [("e[.]example[.]com", "e.example.com"), ("t[.]co", "t.co")]
)
def test_obfuscated_single_letter_label(text: str, host: str) -> None:
    assert [u.host for u in urls_in_text(f"visit {text} now")] == [host]


@pytest.mark.parametrize(
    "text",
    ["version 1.2.3 is out", "see file.txt and a.b", "price: 3.50 EUR", "no links here"],
)
def test_no_false_positive_links(text: str) -> None:
    assert urls_in_text(text) == []


def test_url_count_is_capped() -> None:
    text = " ".join(f"https://h{i}.example.com/" for i in range(MAX_URLS + 50))
    urls = urls_in_text(text)
    assert len(urls) == MAX_URLS
    assert urls[0].host == "h0.example.com"


@FAST
@given(st.text(max_size=2000))
def test_urls_in_text_never_raises(text: str) -> None:
    urls = urls_in_text(text)
    assert len(urls) <= MAX_URLS
    assert all(isinstance(u, Url) and u.source in {"text", "obfuscated"} for u in urls)
    assert len({u.url for u in urls}) == len(urls)


# ----------------------------------------------------------------------------- read_html


PAGE = """<html><head><title>Title text</title><style>p { color: red }</style></head>
<body>
<script>var hiddenScript = 1;</script>
<p>Visible <b>words</b> here.</p>
<span style="display:none">dn text</span>
<span style="visibility: hidden">vh text</span>
<span style="font-size:0px">fs text</span>
<span style="opacity:0">op text</span>
<span style="font-size:12px">normal size</span>
<a href="#top">to top</a>
<a href="cid:image1">cid link</a>
<a href="data:text/html,xx">data link</a>
<a href="mailto:x@example.com">mail us</a>
<a href="https://a.example.com/">First</a>
<a href="https://a.example.com/">First</a>
<a href="https://a.example.com/"><img src="https://i.example.com/i.png">Second</a>
<map><area href="https://area.example.com/"></map>
<form action="https://post.example.org/go"><input name="pw"></form>
<noscript>noscript text</noscript><template>template text</template>
</body></html>"""


def test_read_html_visible_text() -> None:
    content = read_html(PAGE)
    assert "Visible words here." in content.text
    assert "normal size" in content.text
    for absent in (
        "Title text",
        "color: red",
        "hiddenScript",
        "noscript text",
        "template text",
        "<p>",
    ):
        assert absent not in content.text


def test_read_html_hidden_text() -> None:
    content = read_html(PAGE)
    assert content.hidden_text == "dn text vh text fs text op text"
    assert "normal size" not in content.hidden_text


def test_read_html_links() -> None:
    content = read_html(PAGE)
    links = [(u.url, u.host, u.source, u.anchor_text) for u in content.urls]
    assert links == [
        ("mailto:x@example.com", "", "href", "mail us"),
        ("https://a.example.com/", "a.example.com", "href", "First"),
        ("https://a.example.com/", "a.example.com", "href", "Second"),
        ("https://area.example.com/", "area.example.com", "href", ""),
        ("https://post.example.org/go", "post.example.org", "form", ""),
        ("https://i.example.com/i.png", "i.example.com", "image", ""),
    ]


def test_form_with_fragment_action_is_kept() -> None:
    content = read_html('<form action="#"><input></form><a href="#x">x</a>')
    assert [(u.url, u.source) for u in content.urls] == [("#", "form")]


@pytest.mark.parametrize("html", ["", "   \n", "<<<>>>", "\x00\x00<a href=\x00>", "<div>" * 5000])
def test_read_html_tolerates_junk(html: str) -> None:
    content = read_html(html)
    assert isinstance(content.text, str)
    assert isinstance(content.hidden_text, str)
    assert len(content.urls) <= MAX_URLS


def test_read_html_plain_text_input() -> None:
    content = read_html("no tags at all, just text")
    assert content.text == "no tags at all, just text"
    assert content.urls == []


@FAST
@given(
    st.lists(
        st.sampled_from(
            [
                "<a href='http://x.example.com/'>",
                "</a>",
                "<div style='display:none'>",
                "</div>",
                "<form action='/p'>",
                "<script>",
                "</script>",
                "<img src=",
                "text ",
                "<",
                ">",
                "'",
                '"',
                "&amp;",
                "&#0;",
                "<style>",
                "<!--",
                "-->",
                "\x00",
            ]
        )
        | st.text(max_size=10),
        max_size=80,
    )
)
def test_read_html_never_raises(pieces: list[str]) -> None:
    content = read_html("".join(pieces))
    assert len(content.hidden_text) <= 20_000
    assert all(u.source in {"href", "form", "image"} for u in content.urls)
