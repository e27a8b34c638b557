"""The fast paths of rendering give exactly what the straightforward ones gave: ``render``
builds one variable dict per environment and message instead of one jinja context copy per
part, and ``html_to_text`` reads less of each node. The reference implementations below are
the previous code, kept verbatim; outputs and errors must match byte for byte."""

from __future__ import annotations

import html as html_escape
import re
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jinja2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import Markup
from selectolax.lexbor import LexborHTMLParser, LexborNode

from postwise.content import rendering, templates
from postwise.content.rendering import html_to_text
from postwise.content.templates import (
    DEFAULT_LIMITS,
    MessageTemplate,
    RenderedMessage,
    RenderLimits,
    contact_context,
    load_template,
    parse_template,
    render,
)
from postwise.core.errors import (
    TemplateError,
    TemplateLimitError,
    TemplateRenderError,
    TemplateSecurityError,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "templates" / "welcome.toml"

# ---------------------------------------------------------------------------- reference: text

_SKIP_TAGS = {"head", "style", "script", "title", "meta", "link", "-comment"}
_HIDDEN = re.compile(r"display\s*:\s*none", re.I)
_BLOCK_TAGS = {
    "p", "div", "table", "tr", "section", "article", "header", "footer", "blockquote",
    "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "hr", "center", "pre",
}  # fmt: skip


def reference_html_to_text(html: str) -> str:
    tree = LexborHTMLParser(html)
    root = tree.body or tree.root
    if root is None:
        return ""
    out: list[str] = []
    _reference_walk(root, out)
    lines = [" ".join(line.split()) for line in "".join(out).split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def _children(node: LexborNode) -> Iterator[LexborNode]:
    child = node.child
    while child is not None:
        yield child
        child = child.next


def _reference_walk(node: LexborNode, out: list[str]) -> None:
    for child in _children(node):
        tag = child.tag
        if tag == "-text":
            out.append(child.text(deep=False) or "")
            continue
        if tag in _SKIP_TAGS or _HIDDEN.search(child.attributes.get("style") or ""):
            continue
        if tag == "br":
            out.append("\n")
        elif tag == "img":
            alt = (child.attributes.get("alt") or "").strip()
            if alt:
                out.append(f" {alt} ")
        elif tag == "a":
            href = (child.attributes.get("href") or "").strip()
            inner: list[str] = []
            _reference_walk(child, inner)
            label = " ".join("".join(inner).split())
            if not href or href.startswith("#") or href == label:
                out.append(label or href)
            elif href.startswith("mailto:") and href[7:] == label:
                out.append(label)
            else:
                out.append(f"{label} ({href})" if label else href)
        elif tag in {"h1", "h2", "h3", "h4", "h5", "h6"}:
            inner = []
            _reference_walk(child, inner)
            out.append("\n\n" + " ".join("".join(inner).split()).upper() + "\n\n")
        elif tag == "li":
            out.append("\n- ")
            _reference_walk(child, out)
            out.append("\n")
        elif tag == "hr":
            out.append("\n" + "-" * 40 + "\n")
        elif tag in {"td", "th"}:
            out.append(" ")
            _reference_walk(child, out)
            out.append(" ")
        elif tag in _BLOCK_TAGS:
            out.append("\n\n" if tag == "p" else "\n")
            _reference_walk(child, out)
            out.append("\n\n" if tag == "p" else "\n")
        else:
            _reference_walk(child, out)


# ---------------------------------------------------------------------------- reference: render


def reference_finish_html(page: str, css: str, preheader: str) -> str:
    if css.strip():
        style = f"<style>{css}</style>"
        match = rendering._HEAD_END.search(page)
        page = page[: match.start()] + style + page[match.start() :] if match else style + page
    if preheader:
        hidden = (
            f'<div style="{rendering._PREHEADER_STYLE}">{html_escape.escape(preheader)}'
            + "&#847;&zwnj;&nbsp;" * 8
            + "</div>"
        )
        match = rendering._BODY_START.search(page)
        page = page[: match.end()] + hidden + page[match.end() :] if match else hidden + page
    return rendering._INLINER.inline(page)


def reference_render(
    template: MessageTemplate, context: Mapping[str, Any], limits: RenderLimits = DEFAULT_LIMITS
) -> RenderedMessage:
    budget = templates._Budget(limits, time.perf_counter() + limits.max_seconds)
    token = templates._active.set(budget)
    warnings: list[str] = []
    try:
        subject = templates._one_line(_reference_part(template.subject, context, budget))
        preheader = ""
        if template.preheader is not None:
            preheader = templates._one_line(_reference_part(template.preheader, context, budget))
        chosen: dict[str, str] = {}
        filled: dict[str, Markup] = {}
        for slot, variants in template.blocks.items():
            for variant in variants:
                if _reference_condition(variant, context, warnings):
                    chosen[slot] = variant.name
                    filled[slot] = Markup(_reference_part(variant.html, context, budget))
                    break
            else:
                warnings.append(f"block {slot!r}: no variant matched and there is no default")
                filled[slot] = Markup("")
        page = _reference_part(
            template.layout,
            {**context, "blocks": filled, "subject": subject, "preheader": preheader},
            budget,
        )
        html = reference_finish_html(page, template.css, preheader)
        text = reference_html_to_text(html)
    finally:
        templates._active.reset(token)
    for name in dict.fromkeys(budget.missing):
        warnings.append(f"variable {name!r} is undefined and rendered empty")
    return RenderedMessage(
        subject=subject,
        preheader=preheader,
        html=html,
        text=text,
        sender=template.sender,
        reply_to=template.reply_to,
        variants=chosen,
        warnings=tuple(warnings),
    )


def _reference_condition(
    variant: templates.BlockVariant, context: Mapping[str, Any], warnings: list[str]
) -> bool:
    if variant.condition is None:
        return True
    try:
        return bool(variant.condition(**context))  # jinja's own TemplateExpression call
    except jinja2.UndefinedError as error:
        warnings.append(f"block {variant.name!r}: condition {variant.when!r}: {error}; false")
        return False
    except TemplateError:
        raise
    except Exception as error:
        raise TemplateRenderError(
            f"{variant.html.label}: condition {variant.when!r} failed: "
            f"{type(error).__name__}: {error}"
        ) from None


def _reference_part(part: Any, context: Mapping[str, Any], budget: Any) -> str:
    limit = budget.limits.max_output_chars
    chunks: list[str] = []
    size = 0
    try:
        for chunk in part.template.generate(context):
            size += len(chunk)
            if size > limit:
                raise TemplateLimitError(
                    f"{part.label}: output is larger than {limit} characters and was stopped"
                )
            chunks.append(chunk)
            templates._step()
    except TemplateError as error:
        raise type(error)(templates._with_line(part, error)) from None
    except jinja2.exceptions.SecurityError as error:
        raise TemplateSecurityError(templates._with_line(part, error)) from None
    except (RecursionError, MemoryError) as error:
        raise TemplateLimitError(
            templates._with_line(
                part, f"{type(error).__name__}: rendering exhausted the interpreter"
            )
        ) from None
    except Exception as error:
        raise TemplateRenderError(
            templates._with_line(part, f"{type(error).__name__}: {error}")
        ) from None
    return "".join(chunks)


# ---------------------------------------------------------------------------- comparison


def outcome(function: Any, *args: Any) -> tuple[str, Any]:
    try:
        rendered = function(*args)
    except TemplateError as error:
        return ("error", (type(error).__name__, str(error)))
    if isinstance(rendered, str):
        return ("text", rendered)
    return (
        "message",
        (
            rendered.subject,
            rendered.preheader,
            rendered.html,
            rendered.text,
            rendered.sender,
            rendered.reply_to,
            dict(rendered.variants),
            rendered.warnings,
        ),
    )


def assert_same_render(
    template: MessageTemplate, context: Mapping[str, Any], limits: RenderLimits = DEFAULT_LIMITS
) -> tuple[str, Any]:
    new = outcome(render, template, context, limits)
    old = outcome(reference_render, template, context, limits)
    assert new == old
    return new


# ---------------------------------------------------------------------------- html_to_text

_PIECES = [
    *"ab Zé\n\t", "\u00a0", "\u2028", "\x0b", "\x0c", "\r", "\x1c", "\x85", "&nbsp;", "&amp;",
    "<", "https://a.example/x", "a@b.example", "#top", "ß", "\ufffd", "  ",
]  # fmt: skip
_TEXT = st.lists(st.sampled_from(_PIECES), max_size=8).map("".join)
_TAGS = st.sampled_from(
    [
        "a", "img", "br", "h1", "h4", "li", "ul", "ol", "p", "td", "th", "tr", "table", "div",
        "span", "hr", "style", "script", "title", "head", "meta", "svg", "b", "pre", "center",
        "x-card", "blockquote", "section", "A", "TD", "math", "template", "noscript", "body",
    ]
)  # fmt: skip
_ATTRIBUTES = st.lists(
    st.sampled_from(
        [
            ' href="https://a.example/x"', ' href="#top"', ' href=""', " href",
            ' href=" mailto:a@b.example "', ' href="mailto:a@b.example"', ' HREF="tel:+1"',
            ' alt="Logo"', ' alt=" "', " alt", ' ALT="Big"', ' style="display:none"',
            ' style="DISPLAY : None;color:red"', ' style="color:red"', " style",
            ' style="color: red; display :none"',
            ' style="color:red" style="display:none"', ' Style="display: none"',
            ' xlink:href="/b"', ' class="c"', ' alt="x" alt="y"', " hidden",
        ]
    ),
    max_size=3,
)  # fmt: skip


@st.composite
def _element(draw: st.DrawFn, children: st.SearchStrategy[str]) -> str:
    tag = draw(_TAGS)
    attributes = "".join(draw(_ATTRIBUTES))
    inner = "".join(draw(st.lists(children, max_size=4)))
    return f"<{tag}{attributes}>{inner}</{tag}>"


_HTML = st.recursive(
    st.one_of(
        _TEXT,
        st.sampled_from(
            [
                "<!-- note -->",
                "<br>",
                "<img alt=' A '>",
                "<table><tr><th>a</th><th>b</th><td>c</td></tr></table>",
                "<a href='#x'>#x</a>",
                "<a href='mailto:m@x.y'>m@x.y</a>",
            ]
        ),
    ),
    lambda children: _element(children),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.lists(_HTML, max_size=5), wrap=st.booleans())
def test_html_to_text_matches_the_reference(body: list[str], wrap: bool) -> None:
    html = "".join(body)
    if wrap:
        html = f"<!DOCTYPE html><html><head><title>T</title></head><body>{html}</body></html>"
    assert html_to_text(html) == reference_html_to_text(html)


@pytest.mark.parametrize(
    "html",
    [
        "",
        "plain",
        "<html></html>",
        '<a href="https://a.example/y">https://a.example/y</a><a href="mailto:x@y.z">x@y.z</a>',
        '<svg><a xlink:href="/b" href="/a">svg link</a><text style="display:none">h</text></svg>',
        '<div style="display:none"><p>hidden</p></div><p style="color: red">shown</p>',
        "<table><tr><td>a</td><th>b</th></tr></table><hr><ol><li>one<li>two</ol>",
        "<table><tr><th>a</th><th>b</th><td>c</td><td>d</td></tr></table>",
        "<p>\u00a0x\u2028y\x0bz\r\nw</p><pre>  keep   </pre>",
    ],
)
def test_html_to_text_matches_the_reference_on_edge_cases(html: str) -> None:
    assert html_to_text(html) == reference_html_to_text(html)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.lists(_HTML, max_size=5), wrap=st.booleans())
def test_tracked_text_read_from_the_rewritten_tree_matches_a_fresh_parse(
    body: list[str], wrap: bool
) -> None:
    # build_message rewrites links and reads the text part from the one tree it parsed; that
    # must be the text the previous code got by parsing the rewritten HTML again.
    html = "".join(body)
    if wrap:
        html = f"<!DOCTYPE html><html><head><title>T</title></head><body>{html}</body></html>"
    tree = LexborHTMLParser(html)
    if rendering._rewrite_tree(tree, lambda url: "https://t.example/c?u=" + url, frozenset()):
        rewritten = tree.html or html
        assert rendering._tree_text(tree) == reference_html_to_text(rewritten)
        assert rewritten == rendering.rewrite_links(
            html, lambda url: "https://t.example/c?u=" + url
        )


def test_finish_html_matches_the_reference() -> None:
    page = "<html><head></head><body><p class='a'>x</p></body></html>"
    for css, preheader in [(".a { color: red }", "Pre & <b>"), ("", ""), ("p{}", "x")]:
        assert rendering.finish_html(page, css, preheader) == reference_finish_html(
            page, css, preheader
        )


# ---------------------------------------------------------------------------- render


def _toml(
    layout: str, *, subject: str = "Hi", preheader: str | None = "Pre", blocks: str = ""
) -> str:
    lines = [f"subject = '''{subject}'''"]
    if preheader is not None:
        lines.append(f"preheader = '''{preheader}'''")
    lines += ['from = "News <news@shop.example>"', 'css = "p { color: red }"']
    lines.append(f"layout = '''\n{layout}\n'''")
    return "\n".join(lines) + "\n" + blocks


_HERO = (
    "[[blocks.hero]]\nname = 'vip'\nwhen = \"'vip' in segments\"\nhtml = '<p>VIP {{ x }}</p>'\n"
    "[[blocks.hero]]\nwhen = \"score > 0.5\"\nhtml = '''<p>{% set x = 'leak' %}{{ x }}</p>'''\n"
    "[[blocks.hero]]\nwhen = \"subject == 'S'\"\nhtml = '<p>{{ subject }} {{ blocks }}</p>'\n"
    "[[blocks.hero]]\nhtml = '<p>{{ range(3)|list }} {{ n|default(0) / d|default(1) }}</p>'\n"
    "[[blocks.side]]\nwhen = 'contact.vip'\nhtml = '<a href=\"{{ url }}\">{{ url }}</a>'\n"
)
_LAYOUTS = [
    "<html><head><title>{{ subject }}</title></head><body>{{ blocks.hero }}{{ blocks.side }}"
    "<p>{{ x }} {{ preheader }}</p><a href='{{ unsubscribe_url }}'>Unsubscribe</a></body></html>",
    "{% set x = 'layout' %}<p>{{ x }}</p>{{ blocks.hero }}"
    "{% for i in range(n) %}{{ i }}{% endfor %}",
    "<h1>{{ x|default('none') }}</h1>{{ blocks.side }}\n{{ missing }}\n{{ 1 / d }}",
    "{% macro m(k) %}{% if k < n %}{{ m(k + 1) }}{% endif %}{{ k }}{% endmacro %}{{ m(0) }}",
    "{{ x * n }}{{ range|string }}{{ dict(a=1) }}{{ namespace }}{% include 'x.html' if n > 3 %}",
]
_SUBJECTS = ["Hi {{ x }}", "{% set x = 'subject' %}{{ x }}", "{{ n }}\n{{ d }}", "{{ y.z }}"]
_TEMPLATES = [
    parse_template(_toml(layout, subject=subject, preheader=preheader, blocks=_HERO), "eq.toml")
    for layout in _LAYOUTS
    for subject in _SUBJECTS
    for preheader in ("Pre {{ x }}", None)
]
_VALUES = st.one_of(
    st.text(max_size=8), st.integers(-3, 70), st.none(), st.floats(0, 1), st.just([1, "a"])
)


_KEYS = {
    "x": st.one_of(st.text(max_size=8), st.integers(-3, 9), st.none(), st.just([1, "a"])),
    "n": st.integers(0, 70),
    "d": st.integers(0, 2),
    "score": st.floats(0, 1),
    "url": st.sampled_from(["https://a.example/x", "#", "mailto:a@b.example", "<u>"]),
    "vip": st.booleans(),
}
# rarely: a context variable named like a layout variable or a global, or a non-string key
_ODD = [None] * 12 + ["subject", "blocks", "range", "preheader", 1]


@st.composite
def _context(draw: st.DrawFn) -> dict[Any, Any]:
    attributes = {key: draw(values) for key, values in _KEYS.items() if draw(st.booleans())}
    segments = draw(st.lists(st.sampled_from(["vip", "new"]), max_size=2))
    context: dict[Any, Any] = contact_context(
        attributes, segments=segments, extra={"unsubscribe_url": "https://u.example/1"}
    )
    odd = draw(st.sampled_from(_ODD))
    if odd is not None:
        context[odd] = draw(st.sampled_from(["odd", 3]))
    return context


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(template=st.sampled_from(_TEMPLATES), context=_context())
def test_render_matches_the_reference(template: MessageTemplate, context: dict[Any, Any]) -> None:
    assert_same_render(template, context, RenderLimits(max_seconds=30))


def test_render_matches_the_reference_on_the_example() -> None:
    template = load_template(EXAMPLE)
    for name in (None, "Zoë", "<b>&</b>"):
        for segments in ([], ["vip"]):
            for score in (0.1, 0.9):
                attributes: dict[str, Any] = {"city": "Lyon"} if name else {}
                if name:
                    attributes["first_name"] = name
                context = contact_context(
                    attributes,
                    segments=segments,
                    scores={"propensity:online_retail": score},
                    extra={"unsubscribe_url": "https://u.example/1"},
                )
                kind, _ = assert_same_render(template, context)
                assert kind == "message"


@pytest.mark.parametrize(
    ("layout", "limits"),
    [
        ("{% for i in range(10**9) %}{% endfor %}", DEFAULT_LIMITS),
        ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", DEFAULT_LIMITS),
        ("{{ 'x' * 10**9 }}", DEFAULT_LIMITS),
        ("{% for i in range(5000) %}{{ 'y' * 1000 }}{% endfor %}", DEFAULT_LIMITS),
        ("{{ ''|attr('__class__') }}", DEFAULT_LIMITS),
        ("{{ [].append(1) }}", DEFAULT_LIMITS),
        ("line\n{{ 1 / 0 }}", DEFAULT_LIMITS),
        ("{% include 'other.html' %}", DEFAULT_LIMITS),
        ("{{ 'a' * 50 }}", RenderLimits(max_output_chars=20)),
        ("{% for i in range(50) %}{{ i }}{% endfor %}", RenderLimits(max_range=10)),
        ("{{ x }}", RenderLimits(max_seconds=-1)),
    ],
)
def test_hostile_templates_fail_as_the_reference_does(layout: str, limits: RenderLimits) -> None:
    template = parse_template(_toml(layout), "hostile.toml")
    kind, _ = assert_same_render(template, {"x": 1}, limits)
    assert kind == "error"


def test_conditions_fail_as_the_reference_does() -> None:
    blocks = (
        "[[blocks.b]]\nwhen = 'x.y.z > 1'\nhtml = 'a'\n[[blocks.b]]\nwhen = '1 / d'\nhtml = 'b'\n"
    )
    template = parse_template(_toml("{{ blocks.b }}", blocks=blocks), "cond.toml")
    for context in ({"d": 0}, {"d": 1}, {"x": {"y": {"z": 3}}, "d": 0}):
        assert_same_render(template, context)


def test_parts_see_the_globals_jinja_gives_them() -> None:
    template = load_template(EXAMPLE)
    for part in template._parts():
        assert dict(part.template.globals) == part.globals
