"""Message templates: a TOML file of sandboxed Jinja2 parts with modular blocks.

A template (see ``docs/templates.md``) holds ``subject``, ``preheader``, ``from``, optional
``reply_to``, a ``layout`` (the HTML page), ``css`` (inlined at render) and block slots, each an
ordered list of variants ``[[blocks.NAME]]`` with an optional ``when`` condition. The first
variant whose condition is true fills the slot; a variant without ``when`` is the default and
must come last.

Everything written by the template author runs in a hardened
:class:`jinja2.sandbox.ImmutableSandboxedEnvironment`:

* attribute or item names starting with ``_`` are refused when the template is loaded, and the
  sandbox refuses unsafe attributes met at run time (``TemplateSecurityError``);
* ``range()`` is capped, every loop iteration and every call is a step checked against a
  wall-clock deadline, calls nest at most ``max_call_depth`` deep, output is streamed through
  ``Template.generate`` and cut at ``max_output_chars``, and values built by the template
  (``*``, ``**``, ``~``, literals, filter results) are bounded before they are built where an
  allocation could be huge (``TemplateLimitError``);
* every other failure is a ``TemplateRenderError``: rendering never hangs and never raises
  anything but a :class:`~postwise.core.errors.TemplateError`.

Missing variables render empty (``default`` works as usual) and are reported in
``RenderedMessage.warnings``; :func:`lint` turns them into findings.
"""

from __future__ import annotations

import contextvars
import json
import math
import re
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer
from markupsafe import Markup

from postwise.core.errors import (
    TemplateError,
    TemplateFormatError,
    TemplateLimitError,
    TemplateRenderError,
    TemplateSecurityError,
)

#: Variables the campaign runner supplies to every message (the preview fills placeholders).
RUNNER_VARIABLES = ("unsubscribe_url",)
_TOP_KEYS = {"subject", "preheader", "from", "reply_to", "layout", "css", "blocks"}
_VARIANT_KEYS = {"name", "when", "html"}
_SLOT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_FORMAT_WIDTH = re.compile(r"\d{7,}")
# Filters whose integer arguments size what they allocate (padding, batches, slices).
_SIZING_FILTERS = {"center", "indent", "batch", "slice", "wordwrap", "truncate", "format"}
_SIZING_METHODS = {"center", "ljust", "rjust", "zfill", "expandtabs", "format", "format_map"}


@dataclass(frozen=True, slots=True)
class RenderLimits:
    """Bounds on one message's rendering (all parts together)."""

    max_seconds: float = 1.0
    max_output_chars: int = 1_000_000
    max_value_size: int = 1_000_000
    max_items: int = 100_000
    max_range: int = 10_000
    max_call_depth: int = 64
    max_int_bits: int = 100_000


DEFAULT_LIMITS = RenderLimits()


# ---------------------------------------------------------------------------- budget


@dataclass(slots=True)
class _Budget:
    """The running state of one render: deadline, depth, missing variables seen."""

    limits: RenderLimits
    deadline: float
    depth: int = 0
    missing: list[str] = field(default_factory=list)


_active: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar(
    "postwise_template_budget", default=None
)


def _step() -> None:
    budget = _active.get()
    if budget is not None and time.perf_counter() > budget.deadline:
        raise TemplateLimitError(
            f"rendering took longer than {budget.limits.max_seconds:g} s and was stopped "
            "(a loop or recursion too large for one message?)"
        )


def _limits() -> RenderLimits:
    budget = _active.get()
    return DEFAULT_LIMITS if budget is None else budget.limits


def _oversized(value: Any, limits: RenderLimits) -> bool:
    """Whether ``value`` holds more than ``max_value_size`` characters or ``max_items``
    container items, counting shared parts every time they appear (as ``str()`` or a comparison
    would walk them). Stops as soon as a limit is passed, so it is cheap on huge values."""
    if isinstance(value, str):
        return len(value) > limits.max_value_size
    chars = 0
    items = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            chars += len(item)
        elif isinstance(item, list | tuple | set | frozenset | dict):
            items += len(item) + 1
            if items > limits.max_items:
                return True
            stack.extend(item.items() if isinstance(item, dict) else item)
        elif isinstance(item, int) and not isinstance(item, bool):
            chars += item.bit_length() // 3
        if chars > limits.max_value_size:
            return True
    return False


def _check_value(value: Any, what: str = "a value") -> Any:
    limits = _limits()
    if _oversized(value, limits):
        raise TemplateLimitError(
            f"{what} built by the template is larger than {limits.max_value_size} characters "
            f"or {limits.max_items} items"
        )
    return value


def _check_int_args(args: Sequence[Any], kwargs: Mapping[str, Any], what: str) -> None:
    limit = _limits().max_value_size
    for arg in (*args, *kwargs.values()):
        if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > limit:
            raise TemplateLimitError(f"{what}: argument {arg} is over the limit of {limit}")
        if isinstance(arg, str) and _FORMAT_WIDTH.search(arg) and ("%" in arg or "{" in arg):
            raise TemplateLimitError(f"{what}: a format width of 7 or more digits is refused")


def _check_replace(text: str, old: str, new: str, what: str) -> None:
    limit = _limits().max_value_size
    grown = len(text) + (text.count(old) if old else len(text) + 1) * max(len(new) - len(old), 0)
    if grown > limit:
        raise TemplateLimitError(f"{what} would build {grown} characters (limit {limit})")


def _check_join(separator: str, items: Any, what: str) -> None:
    if isinstance(items, list | tuple) and separator:
        limit = _limits().max_value_size
        if len(separator) * len(items) > limit:
            raise TemplateLimitError(f"{what} would build more than {limit} characters")


# ---------------------------------------------------------------------------- undefined


class _RecordingUndefined(jinja2.ChainableUndefined):
    """Renders empty, like the default Undefined, but records that it was used, so a missing
    variable is reported (unless ``default`` or ``is defined`` handled it)."""

    __slots__ = ()

    def _record(self) -> None:
        budget = _active.get()
        if budget is not None:
            budget.missing.append(self._missing_name())

    def _missing_name(self) -> str:
        name = self._undefined_name or "?"
        if self._undefined_obj is jinja2.utils.missing:
            return name
        return f"{type(self._undefined_obj).__name__}.{name}"

    def __str__(self) -> str:
        self._record()
        return ""

    def __html__(self) -> str:
        return str(self)

    def __iter__(self) -> Iterator[Any]:
        self._record()
        return iter(())

    def __len__(self) -> int:
        self._record()
        return 0


# ---------------------------------------------------------------------------- sandbox


class _Hardener(NodeTransformer):
    """Refuses underscore names statically and routes loops, concatenations and literals
    through the environment's guards."""

    @staticmethod
    def _guard(name: str, node: nodes.Node) -> nodes.Expr:
        assert isinstance(node, nodes.Expr)
        return nodes.Call(
            nodes.EnvironmentAttribute(name, lineno=node.lineno),
            [node],
            [],
            None,
            None,
            lineno=node.lineno,
        )

    def visit_Getattr(self, node: nodes.Getattr) -> nodes.Node:
        if node.attr.startswith("_"):
            raise TemplateSecurityError(
                f"line {node.lineno}: attribute {node.attr!r} is refused "
                "(names starting with '_' are internals)"
            )
        return self.generic_visit(node)  # type: ignore[no-any-return]

    def visit_Getitem(self, node: nodes.Getitem) -> nodes.Node:
        if (
            isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
            and node.arg.value.startswith("_")
        ):
            raise TemplateSecurityError(
                f"line {node.lineno}: item {node.arg.value!r} is refused "
                "(names starting with '_' are internals)"
            )
        return self.generic_visit(node)  # type: ignore[no-any-return]

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = self._guard("pw_guard_iter", node.iter)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        return self._guard("pw_guard_value", self.generic_visit(node))

    def visit_List(self, node: nodes.List) -> nodes.Node:
        return self._guard("pw_guard_value", self.generic_visit(node))

    def visit_Dict(self, node: nodes.Dict) -> nodes.Node:
        return self._guard("pw_guard_value", self.generic_visit(node))

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:
        visited = self.generic_visit(node)
        return visited if node.ctx != "load" else self._guard("pw_guard_value", visited)


class _HardenedEnvironment(ImmutableSandboxedEnvironment):
    """ImmutableSandboxedEnvironment with step, depth and size guards (module docstring)."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, *, autoescape: bool) -> None:
        super().__init__(
            autoescape=autoescape,
            undefined=_RecordingUndefined,
            auto_reload=False,
            cache_size=0,
            keep_trailing_newline=True,
        )
        self.globals.pop("lipsum", None)
        self.globals["range"] = _guarded_range
        self.filters = {name: _guard_filter(name, func) for name, func in self.filters.items()}
        # What every template of this environment sees as its globals (jinja gives each one a
        # ChainMap over ``self.globals``, which is set here and never changed afterwards). A
        # plain dict, shared by all templates, lets a render build the variables of all its
        # parts once (``_Scope``) instead of copying a ChainMap for every part.
        self.pw_globals: dict[str, Any] = dict(self.globals)

    # Every template, condition expression included, is hardened before code generation.
    def _generate(self, source: nodes.Template, *args: Any, **kwargs: Any) -> str:
        _Hardener().visit(source)
        return super()._generate(source, *args, **kwargs)  # type: ignore[no-any-return]

    def unsafe_undefined(self, obj: Any, attribute: str) -> jinja2.Undefined:
        raise TemplateSecurityError(
            f"access to attribute {attribute!r} of a {type(obj).__name__!r} object is refused"
        )

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _step()
        budget = _active.get()
        if budget is not None:
            budget.depth += 1
            if budget.depth > budget.limits.max_call_depth:
                budget.depth -= 1
                raise TemplateLimitError(
                    f"calls nested deeper than {budget.limits.max_call_depth} "
                    "(a recursive macro or loop?)"
                )
        try:
            owner = getattr(__obj, "__self__", None)
            if isinstance(owner, str):
                method = getattr(__obj, "__name__", "")
                if method in _SIZING_METHODS:
                    _check_int_args((owner, *args), kwargs, f"str.{method}()")
                elif method == "replace" and len(args) >= 2:
                    _check_replace(owner, str(args[0]), str(args[1]), "str.replace()")
                elif method == "join" and args:
                    _check_join(owner, args[0], "str.join()")
            result = super().call(__context, __obj, *args, **kwargs)
        except jinja2.exceptions.SecurityError as error:
            raise TemplateSecurityError(str(error)) from None
        finally:
            if budget is not None:
                budget.depth -= 1
        return _check_value(result, "a call result")

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        _check_int_args((value.__self__,), {}, "str.format()")

        def bounded(*args: Any, **kwargs: Any) -> str:
            _check_int_args(args, kwargs, "str.format()")
            return wrapped(*args, **kwargs)

        return bounded

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _step()
        limits = _limits()
        if operator == "**":
            _check_power(left, right, limits)
        elif operator == "*":
            _check_product(left, right, limits)
        elif operator == "%" and isinstance(left, str):
            _check_int_args((left,), {}, "'%' formatting")
        result = super().call_binop(context, operator, left, right)
        if operator in {"+", "*"} and not isinstance(result, int | float):
            _check_value(result, f"the result of {operator!r}")
        return result

    def pw_guard_iter(self, iterable: Any) -> Iterator[Any]:
        """Iterate ``iterable``, checking the deadline at every step."""
        for item in iterable:
            _step()
            yield item

    def pw_guard_value(self, value: Any) -> Any:
        """``value`` if it is within the value-size limit."""
        return _check_value(value)


def _check_power(left: Any, right: Any, limits: RenderLimits) -> None:
    if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
        bits = math.log2(abs(left)) * right
        if bits > limits.max_int_bits:
            raise TemplateLimitError(
                f"{left} ** {right} would have about {int(bits)} bits (limit {limits.max_int_bits})"
            )


def _check_product(left: Any, right: Any, limits: RenderLimits) -> None:
    for sequence, count in ((left, right), (right, left)):
        if isinstance(count, int) and isinstance(sequence, str | list | tuple):
            if len(sequence) * count > limits.max_value_size:
                raise TemplateLimitError(
                    f"repeating a {type(sequence).__name__} of {len(sequence)} {count} times "
                    f"is over the limit of {limits.max_value_size}"
                )
            return
    if (
        isinstance(left, int)
        and isinstance(right, int)
        and left.bit_length() + right.bit_length() > limits.max_int_bits
    ):
        raise TemplateLimitError(f"a product over {limits.max_int_bits} bits is refused")


def _guarded_range(*args: Any) -> Iterator[int]:
    """``range()`` capped at ``max_range`` items, checking the deadline at every step."""
    numbers = range(*args)
    limit = _limits().max_range
    if len(numbers) > limit:
        shown = ", ".join(str(arg) for arg in args)
        raise TemplateLimitError(
            f"range({shown}) has {len(numbers)} items, over the limit of {limit}"
        )
    return _stepped(numbers)


def _stepped(numbers: range) -> Iterator[int]:
    for number in numbers:
        _step()
        yield number


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` with its arguments and result bounded; keeps jinja's pass-arg marker."""

    def guarded(*args: Any, **kwargs: Any) -> Any:
        _step()
        if name in _SIZING_FILTERS:
            _check_int_args(args, kwargs, f"filter {name!r}")
        elif name == "replace" and len(args) >= 4:
            _check_replace(str(args[1]), str(args[2]), str(args[3]), "filter 'replace'")
        elif name == "join" and len(args) >= 3:
            _check_join(str(args[2]), args[1], "filter 'join'")
        return _check_value(func(*args, **kwargs), f"the result of filter {name!r}")

    pass_arg = getattr(func, "jinja_pass_arg", None)
    if pass_arg is not None:
        guarded.jinja_pass_arg = pass_arg  # type: ignore[attr-defined]
    guarded.__name__ = getattr(func, "__name__", name)
    return guarded


_HTML_ENV = _HardenedEnvironment(autoescape=True)
_TEXT_ENV = _HardenedEnvironment(autoescape=False)


# ---------------------------------------------------------------------------- model


@dataclass(frozen=True, slots=True)
class _Part:
    """One compiled piece of template text and where it starts in the file."""

    label: str
    source: str
    first_line: int | None
    template: jinja2.Template
    globals: dict[str, Any]  # the environment's ``pw_globals``: what template.globals holds

    def line_of(self, template_line: int | None) -> int | None:
        if self.first_line is None or template_line is None:
            return None
        return self.first_line + template_line - 1


class _Condition:
    """A compiled ``when`` expression. Called with variables it is jinja's
    ``TemplateExpression``; :meth:`evaluate` runs the same compiled code in a context over a
    message's shared variables (``_Scope``), as ``TemplateExpression.__call__`` does over a
    copy of them."""

    __slots__ = ("_expression", "_globals", "_template")

    def __init__(self, expression: Callable[..., Any]) -> None:
        self._expression = expression
        self._template: jinja2.Template | None = None
        self._globals: dict[str, Any] = {}
        template = getattr(expression, "_template", None)  # jinja2 3.1's TemplateExpression
        if isinstance(template, jinja2.Template) and isinstance(
            template.environment, _HardenedEnvironment
        ):
            self._template = template
            self._globals = template.environment.pw_globals

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._expression(*args, **kwargs)

    def evaluate(self, scope: _Scope) -> Any:
        template = self._template
        if template is None:
            return self._expression(**scope.context)
        env = template.environment
        context = env.context_class(
            env, scope.parent(self._globals), template.name, template.blocks, globals=self._globals
        )
        jinja2.utils.consume(template.root_render_func(context))
        return context.vars["result"]


@dataclass(frozen=True, slots=True)
class BlockVariant:
    """One candidate for a block slot: used when ``when`` is true (or always if None)."""

    slot: str
    index: int
    name: str
    when: str | None
    html: _Part
    condition: Callable[..., Any] | None
    line: int | None


@dataclass(frozen=True, slots=True)
class MessageTemplate:
    """A loaded and compiled template; build it with :func:`load_template`."""

    source_name: str
    sender: str
    reply_to: str | None
    css: str
    subject: _Part
    preheader: _Part | None
    layout: _Part
    blocks: Mapping[str, tuple[BlockVariant, ...]]
    names_used: Mapping[str, int | None]
    undeclared: frozenset[str] = frozenset()

    def referenced_variables(self) -> set[str]:
        """Top-level variables the template reads (for docs and lint)."""
        return set(self.undeclared - {"blocks", "range", "dict", "cycler", "joiner", "namespace"})

    def _parts(self) -> list[_Part]:
        parts = [self.subject, self.layout]
        if self.preheader is not None:
            parts.append(self.preheader)
        parts.extend(variant.html for variants in self.blocks.values() for variant in variants)
        return parts


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    """The rendered parts of one message, before MIME assembly (see ``rendering``)."""

    subject: str
    preheader: str
    html: str
    text: str
    sender: str
    reply_to: str | None
    variants: Mapping[str, str]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LintFinding:
    """One lint result: ``severity`` is ``error`` or ``warning``; ``code`` is stable."""

    severity: str
    code: str
    message: str
    line: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "line": self.line,
        }


# ---------------------------------------------------------------------------- loading


def load_template(path: str | Path) -> MessageTemplate:
    """Read and compile the TOML template at ``path``. Raises TemplateFormatError (unreadable,
    malformed TOML or Jinja, missing or unknown keys) or TemplateSecurityError (a name that
    reaches for internals), naming the file and, where known, the line."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise TemplateFormatError(f"{file}: cannot read the template: {error}") from None
    return parse_template(text, str(file))


def parse_template(text: str, source_name: str = "<template>") -> MessageTemplate:
    """Compile the TOML template ``text``; ``source_name`` prefixes error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise TemplateFormatError(f"{source_name}: invalid TOML: {error}") from None
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise TemplateFormatError(
            f"{source_name}: unknown key(s) {', '.join(unknown)}; "
            f"expected {', '.join(sorted(_TOP_KEYS))}"
        )
    for key in ("subject", "from", "layout"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise TemplateFormatError(f"{source_name}: '{key}' is required (a non-empty string)")
    for key in ("preheader", "reply_to", "css"):
        if key in data and not isinstance(data[key], str):
            raise TemplateFormatError(f"{source_name}: '{key}' must be a string")
    lines = text.splitlines()
    names_used: dict[str, int | None] = {}
    undeclared: set[str] = set()

    def part(label: str, source: str, first_line: int | None, env: _HardenedEnvironment) -> _Part:
        # One parse per part: names are read from the tree before compiling hardens it.
        name = f"{source_name}:{label}"
        ast = _parse(env, source, name, first_line, source_name)
        _collect_names(ast, first_line, names_used)
        undeclared.update(jinja2.meta.find_undeclared_variables(ast))
        compiled = _compile(env, ast, name, first_line, source_name)
        return _Part(label, source, first_line, compiled, env.pw_globals)

    subject = part("subject", data["subject"], _key_line(lines, "subject"), _TEXT_ENV)
    preheader = None
    if data.get("preheader", "").strip():
        preheader = part("preheader", data["preheader"], _key_line(lines, "preheader"), _TEXT_ENV)
    layout = part("layout", data["layout"], _key_line(lines, "layout"), _HTML_ENV)
    blocks = _load_blocks(data.get("blocks", {}), lines, source_name, part)
    return MessageTemplate(
        source_name=source_name,
        sender=data["from"].strip(),
        reply_to=(data.get("reply_to") or "").strip() or None,
        css=data.get("css", ""),
        subject=subject,
        preheader=preheader,
        layout=layout,
        blocks=blocks,
        names_used=names_used,
        undeclared=frozenset(undeclared),
    )


def _load_blocks(
    raw: Any,
    lines: list[str],
    source_name: str,
    part: Callable[[str, str, int | None, _HardenedEnvironment], _Part],
) -> dict[str, tuple[BlockVariant, ...]]:
    if not isinstance(raw, dict):
        raise TemplateFormatError(f"{source_name}: 'blocks' must be a table of [[blocks.NAME]]")
    blocks: dict[str, tuple[BlockVariant, ...]] = {}
    for slot, variants_raw in raw.items():
        if not _SLOT_NAME.match(slot):
            raise TemplateFormatError(
                f"{source_name}: block name {slot!r} must be a letter then letters, digits, '_'"
            )
        if isinstance(variants_raw, dict):
            variants_raw = [variants_raw]
        if not isinstance(variants_raw, list) or not variants_raw:
            raise TemplateFormatError(
                f"{source_name}: blocks.{slot} must be one or more [[blocks.{slot}]] tables"
            )
        variants: list[BlockVariant] = []
        for index, item in enumerate(variants_raw):
            header = _variant_line(lines, slot, index)
            where = f"{source_name}: blocks.{slot}[{index}]" + (
                f" (line {header})" if header else ""
            )
            if not isinstance(item, dict):
                raise TemplateFormatError(f"{where}: must be a table with 'html'")
            unknown = sorted(set(item) - _VARIANT_KEYS)
            if unknown:
                raise TemplateFormatError(
                    f"{where}: unknown key(s) {', '.join(unknown)}; expected html, when, name"
                )
            if not isinstance(item.get("html"), str):
                raise TemplateFormatError(f"{where}: 'html' is required (a string)")
            when = item.get("when")
            if when is not None and (not isinstance(when, str) or not when.strip()):
                raise TemplateFormatError(f"{where}: 'when' must be a non-empty expression")
            if variants and variants[-1].when is None:
                raise TemplateFormatError(
                    f"{where}: unreachable, the variant before it has no 'when' (the default "
                    "variant must come last)"
                )
            condition = None
            if when is not None:
                condition = _compile_condition(when, f"{where}: when", source_name)
            html = part(
                f"blocks.{slot}[{index}]",
                item["html"],
                _variant_key_line(lines, header, "html"),
                _HTML_ENV,
            )
            variants.append(
                BlockVariant(
                    slot=slot,
                    index=index,
                    name=str(item.get("name") or f"{slot}[{index}]"),
                    when=when,
                    html=html,
                    condition=condition,
                    line=header,
                )
            )
        blocks[slot] = tuple(variants)
    return blocks


def _syntax_error(
    error: jinja2.TemplateSyntaxError, name: str, first_line: int | None, file: str
) -> TemplateFormatError:
    line = None if first_line is None or error.lineno is None else first_line + error.lineno - 1
    where = f"line {line}" if line else f"{name.rsplit(':', 1)[-1]} line {error.lineno}"
    return TemplateFormatError(f"{file}: {where}: {error.message}")


def _parse(
    env: jinja2.Environment, source: str, name: str, first_line: int | None, file: str
) -> nodes.Template:
    try:
        return env.parse(source, name=name, filename=name)
    except jinja2.TemplateSyntaxError as error:
        raise _syntax_error(error, name, first_line, file) from None


def _compile(
    env: jinja2.Environment, ast: nodes.Template, name: str, first_line: int | None, file: str
) -> jinja2.Template:
    try:
        code = env.compile(ast, name=name, filename=name)
    except jinja2.TemplateSyntaxError as error:
        raise _syntax_error(error, name, first_line, file) from None
    except TemplateSecurityError as error:
        raise TemplateSecurityError(_relocate(str(error), first_line, file, name)) from None
    return env.template_class.from_code(env, code, env.make_globals(None), None)


def _compile_condition(source: str, where: str, file: str) -> Callable[..., Any]:
    try:
        return _Condition(_TEXT_ENV.compile_expression(source, undefined_to_none=False))
    except jinja2.TemplateSyntaxError as error:
        raise TemplateFormatError(f"{where}: {error.message}: {source!r}") from None
    except TemplateSecurityError as error:
        raise TemplateSecurityError(f"{where}: {error}") from None


def _relocate(message: str, first_line: int | None, file: str, name: str) -> str:
    """Turn a 'line N:' relative to a part into a line of the file."""
    match = re.match(r"line (\d+): (.*)", message, re.S)
    if match is None:
        return f"{file}: {message}"
    if first_line is None:
        return f"{file}: {name.rsplit(':', 1)[-1]} line {match[1]}: {match[2]}"
    return f"{file}: line {first_line + int(match[1]) - 1}: {match[2]}"


def _collect_names(
    ast: nodes.Template, first_line: int | None, found: dict[str, int | None]
) -> None:
    for node in ast.find_all((nodes.Name, nodes.Getattr)):
        if isinstance(node, nodes.Name):
            name = node.name
        elif isinstance(node, nodes.Getattr):
            name = node.attr
        else:
            continue
        line = None if first_line is None else first_line + node.lineno - 1
        if found.get(name) is None:
            found[name] = line


def _value_first_line(lines: list[str], index: int) -> int:
    """1-based line where the string value of the key on ``lines[index]`` starts (a multi-line
    string's first newline is trimmed by TOML)."""
    after = lines[index].split("=", 1)[1].strip()
    if after in ('"""', "'''"):
        return index + 2
    return index + 1


def _key_line(lines: list[str], key: str) -> int | None:
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    for index, line in enumerate(lines):
        if line.lstrip().startswith("["):
            return None
        if pattern.match(line):
            return _value_first_line(lines, index)
    return None


def _variant_line(lines: list[str], slot: str, index: int) -> int | None:
    pattern = re.compile(
        rf"^\s*\[\[\s*blocks\s*\.\s*(?:{re.escape(slot)}|\"{re.escape(slot)}\")\s*\]\]"
    )
    seen = 0
    for number, line in enumerate(lines, start=1):
        if pattern.match(line):
            if seen == index:
                return number
            seen += 1
    return None


def _variant_key_line(lines: list[str], header: int | None, key: str) -> int | None:
    if header is None:
        return None
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    for index in range(header, len(lines)):
        if lines[index].lstrip().startswith("["):
            return None
        if pattern.match(lines[index]):
            return _value_first_line(lines, index)
    return None


# ---------------------------------------------------------------------------- context


def contact_context(
    attributes: Mapping[str, Any],
    *,
    segments: Sequence[str] | None = None,
    scores: Mapping[str, float] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The render context of a contact: every attribute as a top-level variable, plus
    ``contact`` (all attributes), ``segments`` (a list) and ``scores`` (name -> score). When
    not given, segments and scores are taken from the attributes of the same name. ``extra``
    (e.g. ``unsubscribe_url``) is added last."""
    contact = dict(attributes)
    seg = list(segments if segments is not None else contact.get("segments") or [])
    sco = dict(scores if scores is not None else contact.get("scores") or {})
    context = {key: value for key, value in contact.items() if isinstance(key, str)}
    context.update(contact=contact, segments=seg, scores=sco)
    if extra:
        context.update(extra)
    return context


# ---------------------------------------------------------------------------- rendering


def render(
    template: MessageTemplate,
    context: Mapping[str, Any],
    limits: RenderLimits = DEFAULT_LIMITS,
) -> RenderedMessage:
    """Render ``template`` for ``context`` (see :func:`contact_context`): choose each block's
    variant, render subject, preheader and layout, inline the CSS and derive the text part.

    Raises TemplateSecurityError, TemplateLimitError or TemplateRenderError (all
    TemplateError); never anything else and never hangs past ``limits.max_seconds``."""
    from postwise.content.rendering import finish_html, html_to_text

    budget = _Budget(limits, time.perf_counter() + limits.max_seconds)
    token = _active.set(budget)
    warnings: list[str] = []
    scope = _Scope(context)
    try:
        subject = _one_line(_render_part(template.subject, scope, budget))
        preheader = ""
        if template.preheader is not None:
            preheader = _one_line(_render_part(template.preheader, scope, budget))
        chosen, filled = _fill_blocks(template, scope, budget, warnings)
        page = _render_part(
            template.layout,
            _LayoutScope(scope, {"blocks": filled, "subject": subject, "preheader": preheader}),
            budget,
        )
        html = finish_html(page, template.css, preheader)
        text = html_to_text(html)
    finally:
        _active.reset(token)
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


class _Scope:
    """The variables of one message as its templates see them: jinja's ``new_context`` makes
    a fresh ``dict(globals, **context)`` for every part; parts of one environment share the
    same globals (``pw_globals``), so the dict is built once per environment and shared. No
    template can change it: the sandbox is immutable and ``{% set %}`` writes to the part's
    own ``Context.vars``."""

    __slots__ = ("_parents", "context")

    def __init__(self, context: Mapping[str, Any]) -> None:
        self.context = context
        self._parents: dict[int, dict[str, Any]] = {}

    def parent(self, globals_: dict[str, Any]) -> dict[str, Any]:
        """``dict(globals_, **context)``, built at the first call (a context with a key that is
        not a string raises the TypeError jinja would, where jinja would)."""
        parent = self._parents.get(id(globals_))
        if parent is None:
            parent = self._parents[id(globals_)] = dict(globals_, **self.context)
        return parent


class _LayoutScope:
    """The variables of the layout: the message's plus ``blocks``, ``subject``, ``preheader``
    (overriding context variables of those names)."""

    __slots__ = ("_scope", "_variables")

    def __init__(self, scope: _Scope, variables: dict[str, Any]) -> None:
        self._scope = scope
        self._variables = variables

    def parent(self, globals_: dict[str, Any]) -> dict[str, Any]:
        return {**self._scope.parent(globals_), **self._variables}


def _fill_blocks(
    template: MessageTemplate,
    scope: _Scope,
    budget: _Budget,
    warnings: list[str],
) -> tuple[dict[str, str], dict[str, Markup]]:
    chosen: dict[str, str] = {}
    filled: dict[str, Markup] = {}
    for slot, variants in template.blocks.items():
        for variant in variants:
            if _condition_holds(variant, scope, warnings):
                chosen[slot] = variant.name
                filled[slot] = Markup(_render_part(variant.html, scope, budget))
                break
        else:
            warnings.append(f"block {slot!r}: no variant matched and there is no default")
            filled[slot] = Markup("")
    return chosen, filled


def _condition_holds(variant: BlockVariant, scope: _Scope, warnings: list[str]) -> bool:
    condition = variant.condition
    if condition is None:
        return True
    try:
        if isinstance(condition, _Condition):
            return bool(condition.evaluate(scope))
        return bool(condition(**scope.context))
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


def _render_part(part: _Part, scope: _Scope | _LayoutScope, budget: _Budget) -> str:
    limit = budget.limits.max_output_chars
    deadline = budget.deadline
    chunks: list[str] = []
    size = 0
    try:
        for chunk in _generate(part, scope.parent(part.globals)):
            size += len(chunk)
            if size > limit:
                raise TemplateLimitError(
                    f"{part.label}: output is larger than {limit} characters and was stopped"
                )
            chunks.append(chunk)
            if time.perf_counter() > deadline:  # _step(), inlined: budget is the active one
                _step()
    except TemplateError as error:
        raise type(error)(_with_line(part, error)) from None
    except jinja2.exceptions.SecurityError as error:
        raise TemplateSecurityError(_with_line(part, error)) from None
    except (RecursionError, MemoryError) as error:
        raise TemplateLimitError(
            _with_line(part, f"{type(error).__name__}: rendering exhausted the interpreter")
        ) from None
    except Exception as error:
        raise TemplateRenderError(_with_line(part, f"{type(error).__name__}: {error}")) from None
    return "".join(chunks)


def _generate(part: _Part, parent: dict[str, Any]) -> Iterator[str]:
    """What ``Template.generate`` does, in a context over ``parent`` (see ``_Scope``): any
    exception goes through the environment's handler, which rewrites the traceback to
    template lines (``_with_line`` reads them)."""
    template = part.template
    env = template.environment
    context = env.context_class(env, parent, template.name, template.blocks, globals=part.globals)
    try:
        yield from template.root_render_func(context)
    except Exception:
        yield env.handle_exception()


def _with_line(part: _Part, error: BaseException | str) -> str:
    message = str(error)
    line = None
    if isinstance(error, BaseException):
        traceback = error.__traceback__
        while traceback is not None:
            if traceback.tb_frame.f_code.co_filename == part.template.name:
                line = traceback.tb_lineno
            traceback = traceback.tb_next
    file_line = part.line_of(line)
    if message.startswith(part.label) or message.startswith("line "):
        return message
    where = f"line {file_line}" if file_line else part.label
    return f"{where}: {message}"


def _one_line(text: str) -> str:
    """Headers never carry line breaks (header injection) nor runs of whitespace."""
    return " ".join(text.split())


# ---------------------------------------------------------------------------- lint

GMAIL_CLIP_BYTES = 102 * 1024
MAX_SUBJECT_CHARS = 78


def lint(
    template: MessageTemplate,
    sample_contexts: Sequence[Mapping[str, Any]] = (),
    limits: RenderLimits = DEFAULT_LIMITS,
) -> list[LintFinding]:
    """Render ``template`` for every sample context (an empty one when none is given; runner
    variables such as ``unsubscribe_url`` get placeholders) and report missing variables,
    broken links, images without alt, HTML over Gmail's 102 KB clip, a long subject, a missing
    preheader and a body without unsubscribe link. Findings are de-duplicated."""
    from postwise.content.rendering import audit_html

    findings: dict[tuple[str, str], LintFinding] = {}

    def add(severity: str, code: str, message: str, line: int | None = None) -> None:
        findings.setdefault((code, message), LintFinding(severity, code, message, line))

    if template.preheader is None:
        add("warning", "missing-preheader", "no preheader: clients show the first body text")
    if "unsubscribe_url" not in template.referenced_variables():
        add(
            "warning",
            "missing-unsubscribe",
            "the body never uses {{ unsubscribe_url }}: add a visible unsubscribe link",
        )
    for context in sample_contexts or [{}]:
        full = {**preview_placeholders(), "contact": {}, "segments": [], "scores": {}, **context}
        try:
            rendered = render(template, full, limits)
        except TemplateError as error:
            add("error", "render-failed", str(error), _line_in(str(error)))
            continue
        for warning in rendered.warnings:
            match = re.match(r"variable '(.+)' is undefined", warning)
            if match:
                name = match[1]
                line = template.names_used.get(name.rsplit(".", 1)[-1])
                add(
                    "error",
                    "missing-variable",
                    f"{name!r} is used without a default and is missing from the context",
                    line,
                )
            else:
                add("warning", "block-empty", warning)
        if len(rendered.subject) > MAX_SUBJECT_CHARS:
            add(
                "warning",
                "subject-too-long",
                f"subject is {len(rendered.subject)} characters (over {MAX_SUBJECT_CHARS}, "
                "clients cut it)",
            )
        size = len(rendered.html.encode("utf-8"))
        if size > GMAIL_CLIP_BYTES:
            add(
                "error",
                "html-too-large",
                f"HTML is {size} bytes after inlining; Gmail clips messages over "
                f"{GMAIL_CLIP_BYTES} bytes (102 KB), hiding the rest and the unsubscribe link",
            )
        for code, message, snippet in audit_html(rendered.html):
            add("error", code, message, _source_line(template, snippet))
    order = {"error": 0, "warning": 1}
    return sorted(findings.values(), key=lambda f: (order[f.severity], f.line or 0, f.code))


def preview_placeholders() -> dict[str, Any]:
    """Values for the runner variables when previewing or linting outside a campaign."""
    return {"unsubscribe_url": "https://example.invalid/unsubscribe/preview"}


def _line_in(message: str) -> int | None:
    match = re.search(r"\bline (\d+)\b", message)
    return int(match[1]) if match else None


def _source_line(template: MessageTemplate, snippet: str | None) -> int | None:
    if not snippet:
        return None
    for part in template._parts():
        for offset, text in enumerate(part.source.splitlines()):
            if snippet in text:
                return part.line_of(offset + 1)
    return None


def load_vars_file(path: str | Path) -> list[dict[str, Any]]:
    """Sample contexts from a JSON file: one object, or a list of objects."""
    file = Path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise TemplateFormatError(f"{file}: cannot read variables: {error}") from None
    items = data if isinstance(data, list) else [data]
    if not items or not all(isinstance(item, dict) for item in items):
        raise TemplateFormatError(f"{file}: expected a JSON object or a list of objects")
    return [dict(item) for item in items]


__all__ = [
    "DEFAULT_LIMITS",
    "GMAIL_CLIP_BYTES",
    "RUNNER_VARIABLES",
    "BlockVariant",
    "LintFinding",
    "MessageTemplate",
    "RenderLimits",
    "RenderedMessage",
    "contact_context",
    "lint",
    "load_template",
    "load_vars_file",
    "parse_template",
    "preview_placeholders",
    "render",
]
