"""Templates: loading, fallbacks, block selection, the sandbox against hostile templates, lint
findings and the ``postwise template`` commands on the shipped example."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from postwise.content.templates import (
    GMAIL_CLIP_BYTES,
    LintFinding,
    MessageTemplate,
    RenderLimits,
    contact_context,
    lint,
    load_template,
    parse_template,
    render,
)
from postwise.core.errors import (
    TemplateError,
    TemplateFormatError,
    TemplateLimitError,
    TemplateRenderError,
    TemplateSecurityError,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "templates" / "welcome.toml"
FAST = RenderLimits(max_seconds=0.3)
UNSUB = {"unsubscribe_url": "https://mail.example/u/abc"}


def make(layout: str, *, extra: str = "", subject: str = "Hi", preheader: str = "Pre") -> str:
    return (
        f'subject = "{subject}"\npreheader = "{preheader}"\nfrom = "News <news@shop.example>"\n'
        f'layout = """\n{layout}\n"""\n{extra}'
    )


def build(layout: str, **kwargs: str) -> MessageTemplate:
    return parse_template(make(layout, **kwargs), "test.toml")


@pytest.fixture(scope="module")
def welcome() -> MessageTemplate:
    return load_template(EXAMPLE)


# ---------------------------------------------------------------------------- loading


def test_example_loads_with_its_parts(welcome: MessageTemplate) -> None:
    assert welcome.sender == "Postwise <hello@postwise.example>"
    assert welcome.reply_to == "support@postwise.example"
    assert [v.name for v in welcome.blocks["hero"]] == ["vip", "shopper", "default"]
    assert "unsubscribe_url" in welcome.referenced_variables()


def test_referenced_variables_are_the_free_names_of_every_part() -> None:
    template = build(
        "{% set local = 1 %}{% for item in items %}{{ item }}{{ local }}{% endfor %}"
        "{{ blocks.hero }}{{ unsubscribe_url }}",
        subject="Hi {{ first_name }}",
        preheader="{{ teaser | default('') }}",
        extra='[[blocks.hero]]\nhtml = "{{ offer.title }}"\n',
    )
    assert template.referenced_variables() == {
        "items", "unsubscribe_url", "first_name", "teaser", "offer",
    }  # fmt: skip


def test_toml_error_names_the_line() -> None:
    with pytest.raises(TemplateFormatError, match=r"bad\.toml: invalid TOML: .*line 2"):
        parse_template('subject = "x"\nfrom = = 1\n', "bad.toml")


def test_jinja_syntax_error_names_the_file_line() -> None:
    text = make("<p>ok</p>\n<p>{{ name }</p>")
    # layout value starts on line 5 (after the opening quotes on line 4); the error is line 6
    with pytest.raises(TemplateFormatError, match=r"test\.toml: line 6: "):
        parse_template(text, "test.toml")


def test_missing_and_unknown_keys_are_refused() -> None:
    with pytest.raises(TemplateFormatError, match="'layout' is required"):
        parse_template('subject = "s"\nfrom = "a@b.example"\n', "t.toml")
    with pytest.raises(TemplateFormatError, match="unknown key"):
        parse_template(make("<p></p>") + 'bcc = "x"\n', "t.toml")


def test_default_variant_must_come_last() -> None:
    extra = '[[blocks.hero]]\nhtml = "a"\n\n[[blocks.hero]]\nwhen = "x"\nhtml = "b"\n'
    with pytest.raises(TemplateFormatError, match=r"blocks\.hero\[1\] \(line 10\): unreachable"):
        build("{{ blocks.hero }}", extra=extra)


# ---------------------------------------------------------------------------- rendering


def test_fallbacks_render_when_the_variable_is_missing(welcome: MessageTemplate) -> None:
    rendered = render(welcome, contact_context({}, extra=UNSUB))
    assert rendered.subject == "Welcome to Postwise, there!"
    assert "Welcome, there!" in rendered.html
    assert rendered.warnings == ()
    named = render(welcome, contact_context({"first_name": "Ada"}, extra=UNSUB))
    assert named.subject == "Welcome to Postwise, Ada!"


def test_values_are_html_escaped_in_the_body_but_not_in_the_subject() -> None:
    template = build("<p>{{ name }}</p>", subject="{{ name }}")
    rendered = render(template, {"name": "<b>Tom & Jerry</b>"})
    assert "&lt;b&gt;Tom &amp; Jerry&lt;/b&gt;" in rendered.html
    assert rendered.subject == "<b>Tom & Jerry</b>"


def test_subject_never_carries_line_breaks() -> None:
    template = build("<p></p>", subject="Hello {{ name }}")
    rendered = render(template, {"name": "x\r\nBcc: victim@example.com"})
    assert "\n" not in rendered.subject and "\r" not in rendered.subject


def test_missing_variable_renders_empty_with_a_warning() -> None:
    rendered = render(build("<p>[{{ nickname }}]</p>"), {})
    assert "[]" in rendered.html
    assert rendered.warnings == ("variable 'nickname' is undefined and rendered empty",)


@pytest.mark.parametrize(
    ("attributes", "segments", "scores", "variant", "marker"),
    [
        ({}, ["vip"], {}, "vip", "VIP"),
        ({"city": "Lyon"}, [], {"propensity:online_retail": 0.8}, "shopper", "Lyon"),
        ({}, [], {"propensity:online_retail": 0.2}, "default", "two-minute tour"),
        ({}, ["vip"], {"propensity:online_retail": 0.9}, "vip", "VIP"),  # first match wins
    ],
)
def test_block_variant_chosen_by_segment_score_or_default(
    welcome: MessageTemplate,
    attributes: dict[str, str],
    segments: list[str],
    scores: dict[str, float],
    variant: str,
    marker: str,
) -> None:
    context = contact_context(attributes, segments=segments, scores=scores, extra=UNSUB)
    rendered = render(welcome, context)
    assert rendered.variants["hero"] == variant
    assert marker in rendered.html


def test_block_variant_chosen_by_attribute_rule() -> None:
    extra = (
        '[[blocks.offer]]\nwhen = "country == \'FR\' and orders > 2"\nhtml = "<p>Bonjour</p>"\n'
        '[[blocks.offer]]\nhtml = "<p>Hello</p>"\n'
    )
    template = build("{{ blocks.offer }}", extra=extra)
    assert "Bonjour" in render(template, {"country": "FR", "orders": 3}).html
    assert "Hello" in render(template, {"country": "FR", "orders": 1}).html


def test_segments_and_scores_come_from_attributes_when_not_given() -> None:
    context = contact_context({"segments": ["vip"], "scores": {"m": 0.4}, "first_name": "Li"})
    assert context["segments"] == ["vip"]
    assert context["scores"] == {"m": 0.4}
    assert context["contact"]["first_name"] == "Li"


def test_condition_on_a_missing_variable_is_false_with_a_warning() -> None:
    extra = '[[blocks.b]]\nwhen = "score > 0.5"\nhtml = "high"\n[[blocks.b]]\nhtml = "low"\n'
    rendered = render(build("{{ blocks.b }}", extra=extra), {})
    assert "low" in rendered.html
    assert any("condition 'score > 0.5'" in warning for warning in rendered.warnings)


def test_slot_without_match_or_default_is_empty_with_a_warning() -> None:
    extra = '[[blocks.b]]\nwhen = "false"\nhtml = "never"\n'
    rendered = render(build("<p>{{ blocks.b }}</p>", extra=extra), {})
    assert "never" not in rendered.html
    assert any("no variant matched" in warning for warning in rendered.warnings)


def test_css_is_inlined_and_media_queries_kept(welcome: MessageTemplate) -> None:
    rendered = render(welcome, contact_context({}, extra=UNSUB))
    assert 'style="max-width: 600px;' in rendered.html
    assert "@media only screen and (max-width: 620px)" in rendered.html
    assert '<meta name="viewport"' in rendered.html
    assert ".footer a {" not in rendered.html  # plain rules left the <style> element


def test_preheader_is_hidden_first_in_body(welcome: MessageTemplate) -> None:
    html = render(welcome, contact_context({}, extra=UNSUB)).html
    body = html[html.index("<body") :]
    first = body[body.index(">") + 1 :]
    assert first.startswith('<div style="display:none;')
    assert "Your account is ready." in first[:400]


def test_text_part_has_links_headings_and_alt_text(welcome: MessageTemplate) -> None:
    text = render(welcome, contact_context({"first_name": "Ada"}, extra=UNSUB)).text
    assert "WELCOME, ADA!" in text
    assert "Get started (https://postwise.example/start)" in text
    assert "Unsubscribe (https://mail.example/u/abc)" in text
    assert "Postwise" in text.splitlines()[0]  # the logo's alt text
    assert "Your account is ready" not in text  # the hidden preheader stays out
    assert "<" not in text


# ---------------------------------------------------------------------------- hostile templates


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ joiner.__init__.__globals__.os }}",
        "{{ namespace.__init__.__globals__ }}",
        "{{ self._TemplateReference__context }}",
        "{{ range.__self__ }}",
        "{{ x['__class__'] }}",
    ],
)
def test_attribute_walking_is_refused_at_load(source: str) -> None:
    with pytest.raises(TemplateSecurityError, match="refused"):
        build(source)


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''|attr('__class__') }}",
        "{{ x[name] }}",
        "{{ '{0.__class__}'.format(x) }}",
        "{{ contact.update({'a': 1}) }}",
        "{{ [].append(1) }}",
    ],
)
def test_attribute_walking_and_mutation_are_refused_at_render(source: str) -> None:
    template = build(source)
    with pytest.raises(TemplateSecurityError):
        render(template, {"x": "", "name": "__class__", "contact": {}}, FAST)


def test_condition_cannot_walk_attributes_either() -> None:
    extra = '[[blocks.b]]\nwhen = "\'\'.__class__"\nhtml = "x"\n'
    with pytest.raises(TemplateSecurityError, match="refused"):
        build("{{ blocks.b }}", extra=extra)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{% for i in range(10**9) %}{% endfor %}", r"range\(1000000000\).*over the limit"),
        (
            "{% for i in range(10000) %}{% for j in range(10000) %}{% for k in range(10000) %}"
            "{% endfor %}{% endfor %}{% endfor %}",
            "longer than 0.3 s",
        ),
        (
            "{% set s = 'x' * 5000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}",
            "longer than 0.3 s",
        ),
        ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "nested deeper than 64"),
        ("{% for x in [1] recursive %}{{ loop([x]) }}{% endfor %}", "nested deeper than 64"),
        ("{{ 'x' * 10**9 }}", "over the limit"),
        ("{{ 9 ** 999999 }}", "bits"),
        ("{{ 'a'|center(1000000000) }}", "over the limit"),
        ("{{ 'a'.ljust(1000000000) }}", "over the limit"),
        ("{{ '{:>999999999}'.format(1) }}", "format width"),
        ("{{ '%999999999s' % 1 }}", "format width"),
        ("{{ [1]|batch(1000000000, 'x')|list }}", "over the limit"),
        ("{{ ('a' * 100000).replace('', 'b' * 100000) }}", "would build"),
        (
            "{% set ns = namespace(s='ab') %}{% for i in range(60) %}"
            "{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
            "larger than",
        ),
        (
            "{% set ns = namespace(s=[1]) %}{% for i in range(60) %}"
            "{% set ns.s = [ns.s, ns.s] %}{% endfor %}{{ ns.s }}",
            "larger than",
        ),
        ("{% for i in range(5000) %}{{ 'y' * 1000 }}{% endfor %}", "output is larger"),
    ],
)
def test_huge_work_is_cut_off_with_a_clear_error(source: str, message: str) -> None:
    template = build(source)
    with pytest.raises(TemplateLimitError, match=message):
        render(template, {}, RenderLimits(max_seconds=0.3, max_output_chars=1_000_000))


def test_runtime_errors_become_template_errors() -> None:
    with pytest.raises(TemplateRenderError, match="ZeroDivisionError"):
        render(build("{{ 1 / 0 }}"), {}, FAST)
    with pytest.raises(TemplateRenderError, match="no loader"):
        render(build("{% include 'other.html' %}"), {}, FAST)


_FRAGMENTS = st.sampled_from(
    [
        "{{ x }}", "{{ x|default('d') }}", "{% for i in range(n) %}", "{% endfor %}",
        "{% if x %}", "{% endif %}", "{{ x.__class__ }}", "{{ x * n }}", "{{ n ** n }}",
        "{{ x ~ x }}", "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", "{{ range(n)|list }}",
        "{{ cycler }}", "{{ x|attr(y) }}", "{{ x[y] }}", "{{ n / 0 }}", "<a href='{{ x }}'>",
        "{{", "}}", "{%", "%}", "{{ x|center(n) }}", "{{ [x, x] }}", "{{ x|join(x) }}",
        "{{ '%s' % x }}", "{{ x.format(n) }}", "{{ lipsum() }}", "text", "{{ x|wordwrap(n) }}",
    ]
)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fragments=st.lists(_FRAGMENTS, max_size=8),
    x=st.one_of(st.text(max_size=20), st.integers(), st.none()),
    y=st.sampled_from(["upper", "__class__", "__init__", "0", "mro"]),
    n=st.sampled_from([0, 1, 7, 10**4, 10**9]),
)
def test_random_templates_render_or_raise_template_error(
    fragments: list[str], x: object, y: str, n: int
) -> None:
    layout = "".join(fragments).replace('"""', "")
    try:
        template = build(layout)
        rendered = render(template, {"x": x, "y": y, "n": n}, RenderLimits(max_seconds=0.2))
    except TemplateError:
        return
    assert isinstance(rendered.html, str)


# ---------------------------------------------------------------------------- lint


def codes(findings: list[LintFinding]) -> set[str]:
    return {finding.code for finding in findings}


def test_example_lints_clean(welcome: MessageTemplate) -> None:
    assert lint(welcome, [contact_context({"first_name": "Ada"})]) == []


def test_lint_reports_missing_variable_with_its_line() -> None:
    template = build("<p>{{ greeting|default('Hi') }}</p>\n<p>{{ nickname }}</p>")
    findings = [f for f in lint(template, [{}]) if f.code == "missing-variable"]
    assert [(f.severity, f.line) for f in findings] == [("error", 6)]
    assert "'nickname'" in findings[0].message
    assert not any(f.code == "missing-variable" for f in lint(template, [{"nickname": "Bo"}]))


@pytest.mark.parametrize(
    ("href", "reason"),
    [
        ("", "is empty"),
        ("#", "placeholder"),
        ("javascript:alert(1)", "not an http"),
        ("http://exa mple.com/x", "malformed"),
        ("https://[::1/x", "malformed"),
        ("https:///path-only", "malformed"),
        ("https://shop.example/{{ '{{' }} sku }}", "template syntax"),
    ],
)
def test_lint_reports_broken_links(href: str, reason: str) -> None:
    template = build(f'<p><a href="{href}">Buy</a> {{{{ unsubscribe_url }}}}</p>')
    broken = [f for f in lint(template) if f.code == "broken-link"]
    assert len(broken) == 1 and reason in broken[0].message
    assert broken[0].severity == "error"


def test_lint_accepts_good_links() -> None:
    layout = (
        '<a href="https://shop.example/a?b=1">a</a> <a href="mailto:help@shop.example">m</a> '
        '<a href="tel:+331234">t</a> <a href="{{ unsubscribe_url }}">u</a>'
    )
    assert "broken-link" not in codes(lint(build(layout)))


def test_lint_reports_images_without_alt() -> None:
    layout = '<img src="https://cdn.example/a.png"><img src="https://cdn.example/b.png" alt="">'
    missing = [f for f in lint(build(layout)) if f.code == "missing-alt"]
    assert len(missing) == 1 and "a.png" in missing[0].message
    assert missing[0].line == 5


def test_lint_reports_html_over_gmail_clip_size() -> None:
    # 120 paragraphs of ~900 bytes of multi-byte text: over 102 KB in UTF-8, not in characters
    layout = "{% for i in range(120) %}<p>{{ 'é' * 450 }}</p>{% endfor %}{{ unsubscribe_url }}"
    findings = lint(build(layout))
    assert "html-too-large" in codes(findings)
    small = "{% for i in range(20) %}<p>{{ 'é' * 450 }}</p>{% endfor %}{{ unsubscribe_url }}"
    assert "html-too-large" not in codes(lint(build(small)))
    assert GMAIL_CLIP_BYTES == 104_448


def test_lint_warns_on_long_subject_missing_preheader_and_unsubscribe() -> None:
    template = build("<p>hi</p>", subject="x" * 90, preheader="")
    findings = {f.code: f for f in lint(template)}
    assert findings["subject-too-long"].severity == "warning"
    assert findings["missing-preheader"].severity == "warning"
    assert findings["missing-unsubscribe"].severity == "warning"


def test_lint_reports_a_failed_render() -> None:
    findings = lint(build("{% for i in range(10**6) %}{% endfor %}"), [{}])
    assert [f.code for f in findings if f.severity == "error"] == ["render-failed"]


# ---------------------------------------------------------------------------- CLI


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_cli_lint_example(runner: CliRunner) -> None:
    from postwise.cli import app

    result = runner.invoke(app, ["template", "lint", str(EXAMPLE), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"file": str(EXAMPLE), "ok": True, "findings": []}


def test_cli_lint_exits_1_on_errors(runner: CliRunner, tmp_path: Path) -> None:
    from postwise.cli import app

    file = tmp_path / "bad.toml"
    file.write_text(make('<a href="#">x</a>{{ unsubscribe_url }}'), encoding="utf-8")
    result = runner.invoke(app, ["template", "lint", str(file), "--json"])
    assert result.exit_code == 1
    assert [f["code"] for f in json.loads(result.output)["findings"]] == ["broken-link"]


def test_cli_render_with_vars(runner: CliRunner, tmp_path: Path) -> None:
    from postwise.cli import app

    variables = tmp_path / "vars.json"
    variables.write_text(json.dumps({"first_name": "Ada", "segments": ["vip"]}))
    result = runner.invoke(
        app, ["template", "render", str(EXAMPLE), "--vars", str(variables), "--format", "text"]
    )
    assert result.exit_code == 0, result.output
    assert "WELCOME, ADA!" in result.output and "priority support" in result.output


@pytest.mark.usefixtures("postwise_env")
def test_cli_render_for_a_stored_contact_as_eml(runner: CliRunner, tmp_path: Path) -> None:
    from email import message_from_bytes, policy

    from postwise.cli import app
    from postwise.core.db import open_database
    from postwise.core.settings import get_settings
    from postwise.engage.contacts import ContactStore

    settings = get_settings()
    store = ContactStore.from_settings(settings, open_database(settings.resolved_database_url))
    store.upsert("zoe@example.com", {"first_name": "Zoë", "segments": ["vip"]})
    out = tmp_path / "preview.eml"
    result = runner.invoke(
        app,
        [
            *("template", "render", str(EXAMPLE), "--contact", "zoe@example.com"),
            *("--format", "eml", "--out", str(out)),
        ],
    )
    assert result.exit_code == 0, result.output
    message = message_from_bytes(out.read_bytes(), policy=policy.default)
    assert message["To"] == "zoe@example.com"
    assert message["Subject"] == "Welcome to Postwise, Zoë!"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    missing = runner.invoke(app, ["template", "render", str(EXAMPLE), "--contact", "no@x.example"])
    assert missing.exit_code == 1
