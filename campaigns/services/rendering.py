"""Rendering user-authored email templates safely.

Templates are written by recruiters in Markdown with Jinja2 merge fields
(``Hi {{ first_name|default("there") }}``). They render in Jinja2's *immutable sandbox* with
an allow-list of filters and tests, no globals, and a context that is a plain dict of declared
merge fields — never a model. Before a template is saved, `template_problems` parses it and
walks the syntax tree: unknown fields, attribute access beyond the declared nested fields,
filters outside the allow-list, function calls, ``{% include %}``/``{% import %}``/
``{% extends %}``/``{% macro %}`` and ``{% autoescape %}`` are reported at their line. The
sandbox is the second wall: whatever slipped past validation still cannot reach Python
internals at render time.

Bounds: the sandbox is no limit on size, so every operation that can make text longer is
checked before it builds it and each render has a budget of work ("bounds" below): a template
that doubles a text forty times is refused at save and fails alone at send time. A template
nested deeper than Jinja and Python can compile (MAX_NESTING) is refused at save too, and
whatever still goes wrong compiling or rendering one (saved before a check existed) is a
TemplateError: previews show it, and the dispatcher fails that message alone.

HTML: the Markdown body is turned into HTML first (with the Jinja tags set aside so Markdown
cannot mangle them), then rendered with autoescape on, so candidate-supplied values are always
escaped; links keep only the http, https and mailto schemes (`safe_links`). The plain-text
part is the same Markdown written as plain text (links as "label (address)", no emphasis marks;
`markdown_to_text_source`), rendered without escaping.
"""

import difflib
import functools
import hashlib
import operator
import re
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from html import unescape as html_unescape
from itertools import chain
from typing import Any

from jinja2 import (
    TemplateError,
    TemplateRuntimeError,
    TemplateSyntaxError,
    Undefined,
    nodes,
    pass_context,
)
from jinja2.compiler import CodeGenerator, optimizeconst
from jinja2.runtime import markup_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer
from markdown_it import MarkdownIt
from markupsafe import Markup, escape, soft_str

# --- merge fields -----------------------------------------------------------------------------


@dataclass(frozen=True)
class MergeField:
    """One declared merge field: what a template may use, what previews show, how it is
    computed from the plain source dict (see `merge_source`)."""

    name: str
    description: str
    sample: Any
    compute: Callable[[dict], Any]
    attributes: tuple[str, ...] = ()  # declared nested fields: recruiter.name
    is_list: bool = False

    @property
    def sample_text(self) -> str:
        """The sample as the editor's field list shows it ("" for nested fields)."""
        if isinstance(self.sample, list):
            return ", ".join(self.sample)
        return self.sample if isinstance(self.sample, str) else ""


def _candidate(key: str) -> Callable[[dict], Any]:
    return lambda source: source["candidate"].get(key) or ""


MERGE_FIELDS: dict[str, MergeField] = {
    f.name: f
    for f in [
        MergeField("first_name", "Candidate's first name", "Ada", _candidate("first_name")),
        MergeField("last_name", "Candidate's last name", "Lovelace", _candidate("last_name")),
        MergeField(
            "full_name",
            "First and last name",
            "Ada Lovelace",
            lambda s: " ".join(
                filter(None, [s["candidate"].get("first_name"), s["candidate"].get("last_name")])
            ),
        ),
        MergeField(
            "current_title", "Current job title", "Staff Engineer", _candidate("current_title")
        ),
        MergeField(
            "current_company",
            "Current employer",
            "Analytical Engines",
            _candidate("current_company"),
        ),
        MergeField(
            "skills",
            "Skills, as a list: {{ skills|join(', ') }}",
            ["python", "postgres"],
            lambda s: list(s["candidate"].get("skills") or []),
            is_list=True,
        ),
        MergeField("city", "City", "London", _candidate("city")),
        MergeField("country", "Country", "United Kingdom", _candidate("country")),
        MergeField(
            "organization_name",
            "Your organisation's name",
            "Acme Talent",
            lambda s: s["organization"]["name"],
        ),
        MergeField(
            "pool_name",
            "The talent pool that brought the candidate into this campaign",
            "Backend engineers",
            _candidate("pool_name"),
        ),
        MergeField(
            "recruiter",
            "The sender: recruiter.name, recruiter.title, recruiter.email, recruiter.signature",
            {
                "name": "Sam Sender",
                "title": "Talent Partner",
                "email": "sam@example.com",
                "signature": "Sam Sender\nTalent Partner, Acme Talent\n+44 20 7946 0000",
            },
            lambda s: dict(s["recruiter"]),
            attributes=("name", "title", "email", "signature"),
        ),
        MergeField(
            "custom",
            "The organisation's custom fields, by key: custom.<key>",
            {},
            lambda s: dict(s["candidate"].get("custom_fields") or {}),
        ),
        MergeField(
            "preferences_url",
            "Link to the candidate's email preferences (in the body only)",
            "https://example.com/e/p/sample/",
            lambda s: s["links"]["preferences_url"],
        ),
        MergeField(
            "unsubscribe_url",
            "Link to unsubscribe (in the body only)",
            "https://example.com/e/u/sample/",
            lambda s: s["links"]["unsubscribe_url"],
        ),
    ]
}

ALLOWED_FILTERS = frozenset(
    {
        "default",
        "upper",
        "lower",
        "title",
        "capitalize",
        "trim",
        "join",
        "truncate",
        "replace",
        "first",
        "last",
        "length",
        "wordcount",
    }
)
ALLOWED_TESTS = frozenset({"defined", "undefined", "none", "string", "number", "sequence"})
LOOP_ATTRIBUTES = frozenset({"index", "index0", "first", "last", "length", "revindex", "revindex0"})
MAX_LOOP_DEPTH = 2

# Syntax the validator lets through; anything else (calls, imports, macros, blocks, autoescape
# switches, arithmetic that can blow up memory like `"x" * 10**9`) is rejected.
_ALLOWED_NODES = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.Name,
    nodes.Const,
    nodes.Getattr,
    nodes.Getitem,
    nodes.Filter,
    nodes.Test,
    nodes.If,
    nodes.For,
    nodes.Assign,
    nodes.With,
    nodes.FilterBlock,
    nodes.Concat,
    nodes.CondExpr,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.Compare,
    nodes.Operand,
    nodes.Add,
    nodes.Sub,
    nodes.Neg,
    nodes.Pos,
    nodes.Tuple,
    nodes.List,
    nodes.Dict,
    nodes.Pair,
    nodes.Keyword,
)
_REJECTED_MESSAGES = {
    nodes.Include: "{% include %} is not allowed in email templates.",
    nodes.Import: "{% import %} is not allowed in email templates.",
    nodes.FromImport: "{% from … import %} is not allowed in email templates.",
    nodes.Extends: "{% extends %} is not allowed in email templates.",
    nodes.Block: "{% block %} is not allowed in email templates.",
    nodes.Macro: "{% macro %} is not allowed in email templates.",
    nodes.CallBlock: "{% call %} is not allowed in email templates.",
    nodes.Call: "Calling functions is not allowed; use merge fields and filters.",
    nodes.Scope: "{% autoescape %} is not allowed: values are always escaped.",
    nodes.ScopedEvalContextModifier: "{% autoescape %} is not allowed: values are always escaped.",
    nodes.EvalContextModifier: "{% autoescape %} is not allowed: values are always escaped.",
}


# --- bounds -----------------------------------------------------------------------------------
# The sandbox keeps a template away from Python's internals, not from building huge text:
# `{% set a = a ~ a %}` twenty times makes 16 MiB, forty times 16 TiB, and `|replace` multiplies
# the same way. Every operation that can make text longer (`~`, `+`, filters, lists written in
# the template) is checked *before* it builds anything, each rendered part is capped, and a render
# may do only so much work in all (loops, comparisons and filters over long text count), so no
# template can take a worker's memory or minutes of its time.

MAX_TEMPLATE_LENGTH = 100_000  # characters of source: Gmail clips an email at ~100 KB anyway
MAX_TEXT = 1_000_000  # characters: the longest text a template may build, and each rendered part
MAX_WORK = 20 * MAX_TEXT  # characters built, compared or filtered in all, per rendered part
MAX_LOOP_ITEMS = 1_000  # items one {% for %} may go through
MAX_LOOP_STEPS = 100_000  # loop iterations x the size of the loop's body, per rendered part
# How deep a template may nest: blocks in blocks, filters in a row, `and`s, `not`s… (levels of its
# syntax tree), and brackets in brackets. Parsing, checking and compiling a template recurse once
# or more per level, and the Python code Jinja makes of it may nest only so far (100 indented
# blocks, 200 brackets): past these limits a template is refused at save, well before any of
# that breaks, whichever worker, view or stack it is later compiled in. Real emails stay under 15.
MAX_NESTING = 50
MAX_BRACKETS = 20

TOO_LONG = f"This template is too long: keep it under {MAX_TEMPLATE_LENGTH:,} characters."
TOO_MUCH_TEXT = "This template produces too much text."
TOO_MUCH_WORK = "This template repeats too much: make its loops or the text it repeats smaller."
LIST_OF_LISTS = "A list in an email template can hold only text and numbers."
ADDED_LISTS = "Only numbers and text can be added together with +."
TOO_DEEP = (
    "This template is nested too deeply: use fewer {% if %} blocks inside one another, "
    "fewer brackets inside brackets and fewer filters, “and”s or “not”s in a row."
)


class RenderLimitExceeded(TemplateRuntimeError):
    """A template went over one of the bounds above (or built a list that could grow past them).
    A TemplateError, so the dispatcher records it as the message's rendering failure and goes on
    with the others; validation reports it when the sample values already run into it."""


class _Budget:
    __slots__ = ("loop_steps", "work")

    def __init__(self):
        self.work = 0
        self.loop_steps = 0


class TemplateCompileError(TemplateError):
    """A template that could not be turned into code (nested too deeply for Python, say). A
    TemplateError, so previews show it and the dispatcher fails the message alone; validation
    refuses such a template before it is saved."""


# The budget of the render under way (set by `_RenderLimits.render_concat`, which drives it).
_budget: ContextVar[_Budget | None] = ContextVar("email_render_budget", default=None)


def _check_length(length: int) -> None:
    if length > MAX_TEXT:
        raise RenderLimitExceeded(TOO_MUCH_TEXT)


def _spend(work: int) -> None:
    budget = _budget.get()
    if budget is not None:  # None: folding constants while compiling (checked by size alone)
        budget.work += work
        if budget.work > MAX_WORK:
            raise RenderLimitExceeded(TOO_MUCH_WORK)


def _built(text):
    """`text` (already built from inputs that were checked) counted against the bounds."""
    if isinstance(text, str):
        _check_length(len(text))
        _spend(len(text))
    return text


def _replace_check(eval_ctx, value, old, new, count=None) -> None:
    """The length `replace` would give, before it builds it (escaped, as the filter escapes)."""
    convert = escape if eval_ctx.autoescape else str
    text, old, new = str(convert(value)), str(convert(old)), str(convert(new))
    _spend(len(text))
    if len(new) <= len(old):
        return
    times = text.count(old)
    if count is not None and count >= 0:
        times = min(times, count)
    _check_length(len(text) + times * (len(new) - len(old)))


def _join_check(eval_ctx, value, separator="", attribute=None) -> None:
    """The separators alone `join` would add, before it adds them: a long text is a list of
    its characters here."""
    if hasattr(value, "__len__"):
        separator = escape(separator) if eval_ctx.autoescape else str(separator)
        _check_length(max(len(value) - 1, 0) * len(separator))


def truncate_problem(length: Any, end: Any = "...", leeway: Any = None) -> str:
    """What is wrong with `truncate`'s arguments ("" if nothing): Jinja *asserts* that the
    length leaves room for the ending and that the leeway is not negative, an AssertionError that
    is no TemplateError (and no check at all under `python -O`)."""
    if isinstance(length, int | float) and isinstance(end, str) and length < len(end):
        return (
            f"“truncate” needs a length of at least {len(end)}, the length of its ending "
            f"“{end}”, e.g. {{{{ first_name|truncate(20) }}}}."
        )
    if isinstance(leeway, int | float) and leeway < 0:
        return "“truncate” cannot have a negative leeway (its fourth value)."
    return ""


def _truncate_check(env, value, length=255, killwords=False, end="...", leeway=None) -> None:
    """`truncate` with a length or leeway that comes from a merge field (those written out are
    refused at save: `_Checker`)."""
    problem = truncate_problem(length, end, leeway)
    if problem:
        raise TemplateRuntimeError(problem)


# The filters with a check (run first): replace and join, which build text longer than what they
# get, and truncate, whose arguments Jinja only asserts.
_FILTER_CHECKS: dict[str, Callable] = {
    "replace": _replace_check,
    "join": _join_check,
    "truncate": _truncate_check,
}
# Filters that take a fixed time whatever they get, and return (part of) it: used as they are.
_CONSTANT_FILTERS = frozenset({"default", "first", "last", "length"})


def _bounded_filter(name: str, function: Callable) -> Callable:
    """`function` with the text it goes through counted as work (`wordcount` on a long text,
    forty times, is seconds), and for replace and join, its checks first."""
    if name in _CONSTANT_FILTERS:
        return function
    check = _FILTER_CHECKS.get(name)
    # A filter that takes Jinja's eval context (replace, join) or environment (truncate) gets it
    # first; the value comes next.
    value_index = 0 if getattr(function, "jinja_pass_arg", None) is None else 1

    @functools.wraps(function)  # keeps jinja_pass_arg: Jinja still passes what the filter takes
    def bounded(*args, **kwargs):
        value = args[value_index]
        if isinstance(value, str):
            _spend(len(value))
        if check is None:  # the text comes out at most a few times as long (upper: ß → SS)
            return function(*args, **kwargs)
        check(*args, **kwargs)
        return _built(function(*args, **kwargs))

    return bounded


def _bounded_items(items):
    """A list, tuple or dict written in the template: text and numbers only, and no more text in
    all than a template may build (a list of lists, each holding the one before twice, would
    print as an exponentially long text)."""
    values = chain(items.keys(), items.values()) if isinstance(items, dict) else items
    total = 0
    for value in values:
        if isinstance(value, str):
            total += len(value)
        elif value is None or isinstance(value, int | float | Undefined):
            total += 1
        else:
            raise RenderLimitExceeded(LIST_OF_LISTS)
    _check_length(total)
    _spend(total)
    return items


@pass_context  # never folded while compiling: every loop is counted when it runs
def _bounded_loop(context, items, steps: int):
    """What a {% for %} goes through, counted: `steps` is the size of the loop's body."""
    if hasattr(items, "__len__"):
        count = len(items)
        if count > MAX_LOOP_ITEMS:
            raise RenderLimitExceeded(TOO_MUCH_WORK)
        budget = _budget.get()
        if budget is not None:
            budget.loop_steps += count * steps
            if budget.loop_steps > MAX_LOOP_STEPS:
                raise RenderLimitExceeded(TOO_MUCH_WORK)
    return items


_LOOP_FILTER = "bounded loop"  # not a name a template can write: only `_BoundLoops` adds it


class _BoundLoops(NodeTransformer):
    """Every {% for %} goes through `_bounded_loop`, with the size of its body."""

    def visit_For(self, node: nodes.For) -> nodes.For:
        self.generic_visit(node)
        steps = 1 + sum(
            1 for child in node.body for _ in chain([child], child.find_all(nodes.Node))
        )
        node.iter = nodes.Filter(
            node.iter, _LOOP_FILTER, [nodes.Const(steps)], [], None, None, lineno=node.lineno
        )
        return node


_COMPARISONS = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gteq": operator.ge,
    "lt": operator.lt,
    "lteq": operator.le,
    "in": lambda left, right: left in right,
    "notin": lambda left, right: left not in right,
}


def _compare(values: tuple):
    """`a == b`, `a in b`, `a < b < c`…, with the text compared counted."""
    left = values[0]
    for index in range(1, len(values), 2):
        operation, right = values[index], values[index + 1]
        _spend(
            (len(left) if isinstance(left, str) else 1)
            + (len(right) if isinstance(right, str | list | tuple | dict) else 1)
        )
        if not _COMPARISONS[operation](left, right):
            return False
        left = right
    return True


class _BoundedCodeGenerator(CodeGenerator):
    """Jinja's code generator with `~`, comparisons and written lists going through the checks
    above, and every loop through `_bounded_loop`."""

    def visit_Template(self, node, frame=None):
        _BoundLoops().visit(node)
        super().visit_Template(node, frame)

    @optimizeconst
    def visit_Concat(self, node, frame):
        self.write("environment.bounded_concat(context.eval_ctx, (")
        for argument in node.nodes:
            self.visit(argument, frame)
            self.write(", ")
        self.write("))")

    @optimizeconst
    def visit_Compare(self, node, frame):
        self.write("environment.bounded_compare((")
        self.visit(node.expr, frame)
        for operand in node.ops:
            self.write(f", {operand.op!r}, ")
            self.visit(operand.expr, frame)
        self.write("))")

    def _bounded_literal(self, visit, node, frame):
        if getattr(node, "ctx", "load") != "load":  # a {% for a, b in … %} target
            return visit(node, frame)
        self.write("environment.bounded_items(")
        visit(node, frame)
        self.write(")")

    def visit_List(self, node, frame):
        self._bounded_literal(super().visit_List, node, frame)

    def visit_Tuple(self, node, frame):
        self._bounded_literal(super().visit_Tuple, node, frame)

    def visit_Dict(self, node, frame):
        self._bounded_literal(super().visit_Dict, node, frame)


class _RenderLimits(ImmutableSandboxedEnvironment):
    """The sandbox, bounded (see "bounds" above)."""

    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"+"})

    def call_binop(self, context, operator_, left, right):
        if isinstance(left, list | tuple | dict) or isinstance(right, list | tuple | dict):
            raise RenderLimitExceeded(ADDED_LISTS)
        if isinstance(left, str) and isinstance(right, str):
            _check_length(len(left) + len(right))
        return _built(super().call_binop(context, operator_, left, right))

    @staticmethod
    def bounded_concat(eval_ctx, values: tuple) -> str:
        parts = [soft_str(value) for value in values]
        _check_length(sum(map(len, parts)))
        return _built(markup_join(parts) if eval_ctx.autoescape else "".join(parts))

    bounded_compare = staticmethod(_compare)
    bounded_items = staticmethod(_bounded_items)

    @staticmethod
    def render_concat(pieces) -> str:
        """Jinja joins a template's output with this (`Environment.concat`): the whole render
        runs inside it, under a fresh budget, and stops as soon as the output is too long. Inside
        a render it joins a {% filter %} block's text, which counts as text built."""
        budget = _budget.get()
        if budget is not None:
            pieces = list(pieces)
            _check_length(sum(map(len, pieces)))
            return _built("".join(pieces))
        token = _budget.set(_Budget())
        try:
            out: list[str] = []
            append = out.append
            length = 0
            for piece in pieces:
                length += len(piece)
                if length > MAX_TEXT:
                    raise RenderLimitExceeded(TOO_MUCH_TEXT)
                append(piece)
            return "".join(out)
        finally:
            _budget.reset(token)

    concat = render_concat


def _environment(*, autoescape: bool) -> ImmutableSandboxedEnvironment:
    env = _RenderLimits(
        autoescape=autoescape,
        undefined=Undefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
        # Jinja's optimizer folds constants by trying every sub-expression at every level of the
        # tree it compiles: cubic in the nesting, seconds for a 100,000-character template of
        # nested `x if y else (…)`. Whole merge fields of constants are still folded.
        optimized=False,
    )
    env.filters = {name: _bounded_filter(name, env.filters[name]) for name in ALLOWED_FILTERS}
    env.filters[_LOOP_FILTER] = _bounded_loop
    env.tests = {name: env.tests[name] for name in ALLOWED_TESTS}
    env.globals = {}  # no range, cycler, joiner, namespace, lipsum, dict
    return env


HTML_ENV = _environment(autoescape=True)
TEXT_ENV = _environment(autoescape=False)


# --- validation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateProblem:
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"Line {self.line}: {self.message}" if self.line else self.message


def _stored_names(target: nodes.Node) -> set[str]:
    found = [target] if isinstance(target, nodes.Name) else target.find_all(nodes.Name)
    return {node.name for node in found if node.ctx in ("store", "param")}


# Merge fields that carry the candidate's signed token: links for the body, where the candidate
# finds them. In a subject they would also end up wherever the team sees subjects (the timeline,
# lists of sent emails).
CANDIDATE_LINK_FIELDS = frozenset({"unsubscribe_url", "preferences_url"})


@dataclass
class _Checker:
    custom_keys: frozenset[str]
    links_allowed: bool = True
    local_names: set[str] = field(default_factory=set)
    problems: list[TemplateProblem] = field(default_factory=list)

    def report(self, node: nodes.Node, message: str) -> None:
        line = getattr(node, "lineno", None)
        for child in node.find_all(nodes.Node) if line is None else ():
            line = getattr(child, "lineno", None)
            if line:
                break
        self.problems.append(TemplateProblem(line, message))

    def visit(self, node: nodes.Node, loop_depth: int = 0) -> None:
        for node_type, message in _REJECTED_MESSAGES.items():
            if isinstance(node, node_type):
                self.report(node, message)
                return
        if not isinstance(node, _ALLOWED_NODES):
            self.report(node, f"This template syntax is not allowed ({type(node).__name__}).")
            return
        if isinstance(node, nodes.Name) and node.ctx == "load":
            if node.name not in MERGE_FIELDS and node.name not in self.local_names:
                self.report(node, f"Unknown merge field “{node.name}”.{_did_you_mean(node.name)}")
            elif node.name in CANDIDATE_LINK_FIELDS and not self.links_allowed:
                self.report(node, f"“{node.name}” is a link for the body of the email.")
            return
        if isinstance(node, nodes.Getattr):
            self.check_attribute(node, node.node, node.attr)
            return
        if isinstance(node, nodes.Getitem):
            key = node.arg.value if isinstance(node.arg, nodes.Const) else None
            if isinstance(node.node, nodes.Name) and MERGE_FIELDS.get(node.node.name):
                merge_field = MERGE_FIELDS[node.node.name]
                if merge_field.is_list and isinstance(key, int):
                    return
                if isinstance(key, str):
                    self.check_attribute(node, node.node, key)
                    return
            self.report(node, "Indexing is only allowed on declared fields, e.g. skills[0].")
            return
        if isinstance(node, nodes.Filter) and node.name not in ALLOWED_FILTERS:
            self.report(
                node,
                f"The filter “{node.name}” is not allowed. Allowed: "
                + ", ".join(sorted(ALLOWED_FILTERS))
                + ".",
            )
        if isinstance(node, nodes.Filter) and node.name == "truncate":
            problem = _written_truncate_problem(node)
            if problem:
                self.report(node, problem)
        if isinstance(node, nodes.Test) and node.name not in ALLOWED_TESTS:
            self.report(node, f"The test “{node.name}” is not allowed.")
        if isinstance(node, nodes.For):
            if node.recursive:
                self.report(node, "Recursive loops are not allowed.")
            if loop_depth >= MAX_LOOP_DEPTH:
                self.report(node, f"Loops may be nested at most {MAX_LOOP_DEPTH} deep.")
                return
            self.visit(node.iter, loop_depth)
            outside = set(self.local_names)  # the loop's names exist only inside it
            self.local_names |= _stored_names(node.target) | {"loop"}
            if node.test is not None:
                self.visit(node.test, loop_depth)
            for child in node.body:
                self.visit(child, loop_depth + 1)
            self.local_names = outside
            for child in node.else_:
                self.visit(child, loop_depth)
            return
        if isinstance(node, nodes.Assign):  # {% set %}: the name exists from here on
            self.visit(node.node, loop_depth)
            self.local_names |= _stored_names(node.target)
            return
        if isinstance(node, nodes.With):  # {% with %}: the names exist inside it only
            for child in node.values:
                self.visit(child, loop_depth)
            outside = set(self.local_names)
            for target in node.targets:
                self.local_names |= _stored_names(target)
            for child in node.body:
                self.visit(child, loop_depth)
            self.local_names = outside
            return
        for child in node.iter_child_nodes():
            self.visit(child, loop_depth)

    def check_attribute(self, node: nodes.Node, target: nodes.Node, attribute: str) -> None:
        if isinstance(target, nodes.Name):
            if target.name == "loop" and target.name in self.local_names:
                if attribute in LOOP_ATTRIBUTES:
                    return
            elif target.name == "custom":
                if attribute in self.custom_keys:
                    return
                self.report(node, f"Unknown custom field “{attribute}”.")
                return
            elif target.name in MERGE_FIELDS:
                if attribute in MERGE_FIELDS[target.name].attributes:
                    return
                self.report(node, f"“{target.name}” has no field “{attribute}”.")
                return
            elif target.name not in self.local_names:
                # {{ candidate.first_name }}: the fields stand on their own.
                hint = (
                    f" Write {{{{ {attribute} }}}} instead."
                    if attribute in MERGE_FIELDS
                    else _did_you_mean(target.name)
                )
                self.report(node, f"Unknown merge field “{target.name}”.{hint}")
                return
        self.report(node, f"“{attribute}” cannot be used here: only declared fields can.")


def _written(node: nodes.Node) -> Any:
    """The value of a number or text written out (`2`, `-1`, `"…"`), else None: unknown here."""
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, nodes.Neg) and isinstance(node.node, nodes.Const):
        value = node.node.value
        return -value if isinstance(value, int | float) else None
    return None


def _written_truncate_problem(node: nodes.Filter) -> str:
    """`truncate(2)`: what `truncate_problem` says of the arguments written out."""
    values: dict[str, Any] = {"length": 255, "end": "...", "leeway": None}
    given = dict(zip(("length", "killwords", "end", "leeway"), node.args, strict=False))
    given |= {keyword.key: keyword.value for keyword in node.kwargs}
    for name, argument in given.items():
        if name in values:
            values[name] = _written(argument)
    return truncate_problem(values["length"], values["end"], values["leeway"])


def _did_you_mean(name: str) -> str:
    close = difflib.get_close_matches(name, MERGE_FIELDS, n=1, cutoff=0.7)
    return f" Did you mean “{close[0]}”?" if close else ""


_BRACKETS = {")": "(", "]": "[", "}": "{"}
_OPENERS = {"else": "if", "elif": "if"}


def _unknown_tag(match: re.Match) -> str:
    tag = match.group(1)
    opener = _OPENERS.get(tag) or (tag[3:] if tag.startswith("end") else None)
    if opener == "if" and not tag.startswith("end"):
        return f"{{% {tag} %}} is only allowed inside an {{% if %}} block."
    if opener:
        return f"{{% {tag} %}} has no {{% {opener} %}} before it to close."
    return (
        f"“{{% {tag} %}}” is not a tag email templates know: they can use {{% if %}}, "
        "{% for %}, {% set %} and {% with %}."
    )


def _unclosed_char(match: re.Match) -> str:
    char = match.group(2)
    if char in "\"'":
        return "a quoted text is not closed: end it with the same quote mark."
    return f"the character “{char}” cannot be used inside a merge field or tag."


def _unclosed_bracket(match: re.Match) -> str:
    closing = match.group(1)
    return f"a “{_BRACKETS[closing]}” is not closed: add “{closing}”."


# Jinja's parser messages, in a recruiter's words (the line number is added in front).
_SYNTAX_MESSAGES: list[tuple[re.Pattern, Callable[[re.Match], str]]] = [
    (
        re.compile(r"unexpected end of template, expected 'end of print statement'"),
        lambda m: "a merge field is not closed — end it with }}",
    ),
    (
        re.compile(r"unexpected end of template, expected 'end of statement block'"),
        lambda m: "a tag is not closed — end it with %}",
    ),
    (
        re.compile(r"Missing end of comment tag"),
        lambda m: "a comment is not closed — end it with #}",
    ),
    (
        re.compile(r"Unexpected end of template\..* needs to be closed is '(\w+)'", re.DOTALL),
        lambda m: f"a {{% {m[1]} %}} block is not closed with {{% end{m[1]} %}}",
    ),
    (
        re.compile(r"Encountered unknown tag '(\w+)'\..* needs to be closed is '(\w+)'", re.DOTALL),
        lambda m: (
            f"{{% {m[1]} %}} does not fit here: the {{% {m[2]} %}} block before it "
            f"is still open — close it with {{% end{m[2]} %}} first"
        ),
    ),
    (re.compile(r"Encountered unknown tag '(\w+)'\.$"), _unknown_tag),
    (
        re.compile(r"Expected an expression, got 'end of print statement'"),
        lambda m: "a merge field is empty: put a field between {{ and }}, e.g. {{ first_name }}",
    ),
    (
        re.compile(r"Expected an expression, got 'end of statement block'"),
        lambda m: "a tag is missing what it works on, e.g. {% if city %}",
    ),
    (
        re.compile(r"expected token 'end of print statement', got '(.+)'"),
        lambda m: (
            f"“{m[1]}” is unexpected in this merge field: use one field per {{{{ }}}}, "
            'with filters after a |, e.g. {{ first_name|default("there") }}'
        ),
    ),
    (
        re.compile(r"expected token 'name', got 'end of print statement'"),
        lambda m: "a filter's name is missing after the |, e.g. {{ first_name|upper }}",
    ),
    (
        re.compile(r"unexpected 'end of print statement'"),
        lambda m: "a merge field ends too early: something is missing before the }}",
    ),
    (re.compile(r"unexpected '.+', expected '([)\]])'"), _unclosed_bracket),
    (
        re.compile(r"unexpected '}'$"),
        lambda m: "a merge field ends with a single } — end it with }}",
    ),
    (re.compile(r"unexpected char (['\"])(.)\1 at \d+"), _unclosed_char),
    (
        re.compile(r"expected name or number"),
        lambda m: "a field's name is missing after the dot, e.g. {{ recruiter.name }}",
    ),
    (re.compile(r"tag name expected"), lambda m: "a tag is empty, e.g. write {% if city %}"),
]


def syntax_message(message: str) -> str:
    """A Jinja parser message in plain words; an unrecognised one is kept, so nothing is
    lost."""
    message = (message or "").strip()
    for pattern, plain in _SYNTAX_MESSAGES:
        match = pattern.match(message)
        if match:
            text = plain(match)
            return text if text[-1] in ".}" else f"{text}."
    if not message:
        return "The template cannot be read here."
    return f"the template cannot be read here ({message.rstrip('.')})."


def template_problems(
    source: str,
    *,
    custom_keys: Iterable[str] = (),
    links_allowed: bool = True,
    markdown: bool = False,
) -> list[TemplateProblem]:
    """Everything wrong with a template, each with its line (empty list: it is fine).
    `links_allowed`: False for a subject or preheader (see CANDIDATE_LINK_FIELDS). `markdown`:
    the source is an email's Markdown body, compiled as its HTML and text parts."""
    if len(source) > MAX_TEMPLATE_LENGTH:
        return [TemplateProblem(None, TOO_LONG)]
    nested = _bracket_nesting_line(source)
    if nested:
        return [TemplateProblem(nested, TOO_DEEP)]
    try:
        tree = TEXT_ENV.parse(source)
    except TemplateSyntaxError as error:
        return [TemplateProblem(error.lineno, syntax_message(error.message or ""))]
    except (RecursionError, MemoryError):  # `not not not …` a thousand times
        return [TemplateProblem(None, TOO_DEEP)]
    deepest = _deepest_node(tree)
    if deepest is not None:
        return [TemplateProblem(getattr(deepest, "lineno", None), TOO_DEEP)]
    # Names a template sets ({% set %}, {% for %}, {% with %}) are known where Jinja defines
    # them: after a {% set %}, inside their loop or {% with %}; anywhere else they are as
    # unknown as a misspelt merge field.
    checker = _Checker(custom_keys=frozenset(custom_keys), links_allowed=links_allowed)
    checker.visit(tree)
    if checker.problems:
        return sorted(checker.problems, key=lambda problem: problem.line or 0)
    return list(_compiled_problems(source, frozenset(custom_keys), markdown))


def _bracket_nesting_line(source: str) -> int | None:
    """The line where brackets go more than MAX_BRACKETS deep (None: they do not). Counted on
    Jinja's tokens, which it reads without recursing; its parser recurses a dozen times for each
    bracket. A source Jinja cannot read is left to the parser, which says why."""
    depth = 0
    try:
        for line, kind, value in TEXT_ENV.lex(source):
            if kind != "operator":
                continue
            if value in "([{":
                depth += 1
                if depth > MAX_BRACKETS:
                    return line
            elif value in ")]}":
                depth -= 1
    except TemplateSyntaxError:
        return None
    return None


def _deepest_node(tree: nodes.Node) -> nodes.Node | None:
    """The first node more than MAX_NESTING levels down the tree (None: there is none), found
    without recursing, so that what recurses later (the checks, Jinja's compiler, Python's) has
    room."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            return node
        stack.extend((child, depth + 1) for child in reversed(list(node.iter_child_nodes())))
    return None


@lru_cache(maxsize=256)
def _compiled_problems(
    source: str, custom_keys: frozenset[str], markdown: bool
) -> tuple[TemplateProblem, ...]:
    """What stops the template compiling as it is sent, or rendering with the sample values
    within the bounds (none: it is fine): a template that doubles its text until it is too long
    does so with any values. Other render errors depend on the candidate's values and are not the
    template's fault."""
    try:
        with _compiling():
            template = TEXT_ENV.from_string(source)
            if markdown:
                HTML_ENV.from_string(markdown_to_html_source(source))
                TEXT_ENV.from_string(markdown_to_text_source(source))
    except TemplateSyntaxError as error:  # Jinja checks a few things only when compiling
        return (TemplateProblem(error.lineno, syntax_message(error.message or "")),)
    except TemplateError as error:
        return (TemplateProblem(None, error.message or TOO_DEEP),)
    try:
        template.render(sample_context(custom_keys=custom_keys))
    except RenderLimitExceeded as error:
        return (TemplateProblem(None, error.message or TOO_MUCH_TEXT),)
    except Exception:  # noqa: S110 — the values of a real candidate may well differ
        pass
    return ()


# --- compiling and rendering --------------------------------------------------------------------

JINJA_SEGMENT = re.compile(r"{{.*?}}|{%.*?%}|{#.*?#}", re.DOTALL)
_markdown = MarkdownIt("commonmark", {"html": False, "breaks": True}).enable(
    ["table", "strikethrough"]
)


def _hide_jinja(source: str) -> tuple[str, list[str], re.Pattern]:
    """`source` with its Jinja tags swapped for inert placeholders (so Markdown does not touch
    the quotes, underscores and pipes inside them), the tags to put back, and the pattern that
    finds the placeholders. They are named after a hash of the source, which no text in it can
    spell (not even written as entities, `&#74;`, that Markdown turns into letters): text that
    looks like a placeholder stays text."""
    mark = "JINJA" + hashlib.blake2b(source.encode(), digest_size=8).hexdigest().upper()
    segments: list[str] = []

    def hide(match: re.Match) -> str:
        segments.append(match.group(0))
        return f"{mark}S{len(segments) - 1}X"

    return JINJA_SEGMENT.sub(hide, source), segments, re.compile(mark + r"S(\d+)X")


def markdown_to_html_source(body_markdown: str) -> str:
    """Markdown → HTML, keeping the Jinja tags intact."""
    hidden, segments, placeholder = _hide_jinja(body_markdown)
    html = _markdown.render(hidden)
    return placeholder.sub(lambda m: segments[int(m.group(1))], html)


def markdown_to_text_source(body_markdown: str) -> str:
    """Markdown → the plain-text part, keeping the Jinja tags intact: what a text-only mail
    client shows. Emphasis marks go, a link becomes "label (https://…)" (only the address when
    that is its label), list items keep "- " or "1. ", quotes keep "> ", tables become rows of
    cells separated by " | ", code stays as written.

    The Markdown source itself is used instead when the conversion cannot keep every Jinja tag
    once and in order (a tag inside a link's title), or would make new Jinja syntax out of
    escaped braces: the text part then says what the HTML says, never something else."""
    hidden, segments, placeholder = _hide_jinja(body_markdown)
    text = _text_from_tokens(_markdown.parse(hidden))
    found = [int(index) for index in placeholder.findall(text)]
    if found != list(range(len(segments))) or JINJA_SEGMENT.search(text) or "{#" in text:
        return body_markdown
    return placeholder.sub(lambda m: segments[int(m.group(1))], text)


def _inline_text(children) -> str:
    out: list[str] = []
    links: list[tuple[int, str]] = []
    for token in children or ():
        kind = token.type
        if kind in ("text", "code_inline"):
            out.append(token.content)
        elif kind in ("softbreak", "hardbreak"):
            out.append("\n")
        elif kind == "image":
            out.append(token.content)  # the alt text
        elif kind == "link_open":
            links.append((len(out), str(token.attrGet("href") or "")))
        elif kind == "link_close" and links:
            start, href = links.pop()
            shown = href.removeprefix("mailto:")
            if shown and "".join(out[start:]).strip() != shown:
                out.append(f" ({shown})")
        # strong, em and s open/close: the words stay, the marks go
    return "".join(out)


def _text_from_tokens(tokens) -> str:
    blocks: list[str] = []
    quote = 0
    lists: list[list] = []  # per open list: [ordered, next number, tight]
    widths: list[int] = []  # per open list item: the width of its marker
    marker = ""  # the marker of a list item whose first block is still to come
    join_tight = False  # the next block follows the previous one on the next line
    row: list[str] = []

    def emit(text: str) -> None:
        nonlocal marker, join_tight
        outer = " " * sum(widths[:-1] if marker else widths)
        inner = " " * sum(widths)
        mark = "> " * quote
        lines = text.split("\n")
        shaped = [mark + outer + marker + lines[0]]
        shaped += [(mark + inner + line) if line else mark.rstrip() for line in lines[1:]]
        block = "\n".join(shaped)
        if blocks and join_tight:
            blocks[-1] += "\n" + block
        else:
            blocks.append(block)
        marker, join_tight = "", False

    for index, token in enumerate(tokens):
        kind = token.type
        if kind == "inline":
            if tokens[index - 1].type in ("th_open", "td_open"):
                row.append(_inline_text(token.children).strip())
            else:
                emit(_inline_text(token.children))
        elif kind in ("fence", "code_block"):
            emit(token.content.rstrip("\n"))
        elif kind == "hr":
            emit("-" * 20)
        elif kind == "blockquote_open":
            quote += 1
        elif kind == "blockquote_close":
            quote -= 1
        elif kind in ("bullet_list_open", "ordered_list_open"):
            start = int(token.attrGet("start") or 1)
            tight = index + 2 < len(tokens) and tokens[index + 2].hidden
            # A nested list follows its item's text on the next line in a tight list.
            join_tight = bool(lists and lists[-1][2] and tight)
            lists.append([kind == "ordered_list_open", start, tight])
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif kind == "list_item_open":
            ordered, number, tight = lists[-1]
            marker = f"{number}. " if ordered else "- "
            lists[-1][1] += 1
            widths.append(len(marker))
            if tight and tokens[index - 1].type == "list_item_close":
                join_tight = True
        elif kind == "list_item_close":
            widths.pop()
            marker = ""
        elif kind == "tr_close":
            emit(" | ".join(row))
            join_tight, row = True, []
        elif kind == "table_close":
            join_tight = False
    return "\n\n".join(blocks)


# --- links: only http, https and mailto -------------------------------------------------------

_LINK_ATTRIBUTE = re.compile(r'<(a href|img src)="([^"]*)"([^>]*)>')
_LINK_SCHEMES = {
    "a href": frozenset({"http", "https", "mailto"}),
    "img src": frozenset({"http", "https"}),
}
_FIXED_PREFIXES = {"a href": ("https://", "http://", "mailto:"), "img src": ("https://", "http://")}
_SCHEME = re.compile(r"([a-z][a-z0-9+.-]*):")
_URL_IGNORED = re.compile(r"[\x00-\x20]")  # what browsers drop from a URL before its scheme


def _fixed_scheme(match: re.Match) -> bool:
    """The address starts with an allowed scheme, written out: whatever merge fields fill in
    after it, the link stays on that scheme."""
    tag, address = match.group(1), match.group(2)
    return address[:8].lower().startswith(_FIXED_PREFIXES[tag])


def _safe_link(match: re.Match) -> str:
    if _fixed_scheme(match):
        return match.group(0)
    tag, address, rest = match.groups()
    scheme = _SCHEME.match(_URL_IGNORED.sub("", html_unescape(address)).lower())
    if scheme and scheme.group(1) in _LINK_SCHEMES[tag]:
        return match.group(0)
    return f'<{tag}="#"{rest}>'


def safe_links(html: str) -> str:
    """The rendered body with every link's address checked: only http, https and mailto: links
    (http and https images) are kept; any other (`javascript:`, `data:`, a merge field with no
    scheme) becomes "#". Markdown refuses a `javascript:` link written out, but not one that a
    merge field completes (`[site]({{ custom.website }})`): the check has to come after the
    render. `email_compile` notes whether a body needs it (`links_to_check`)."""
    return _LINK_ATTRIBUTE.sub(_safe_link, html)


@dataclass(frozen=True)
class CompiledEmail:
    subject: Any
    preheader: Any
    html: Any
    text: Any
    links_to_check: bool = True  # a link's address is not fixed as http(s) or mailto (safe_links)


@contextmanager
def _compiling():
    """Whatever goes wrong compiling a template raised as a TemplateError. Jinja makes Python
    code of a template and compiles that: a template nested too deeply raises Python's own
    IndentationError or SyntaxError ("too many nested parentheses") there, or a RecursionError
    on the way, none of which is Jinja's."""
    try:
        yield
    except TemplateError:
        raise
    except (SyntaxError, RecursionError, MemoryError) as error:
        raise TemplateCompileError(TOO_DEEP) from error
    except Exception as error:
        raise TemplateCompileError(
            f"This template could not be compiled ({type(error).__name__})."
        ) from error


def email_compile(*, subject: str, preheader: str, body_markdown: str) -> CompiledEmail:
    """Compile an email's parts once; the dispatcher renders thousands of messages with it.
    Raises a TemplateError if they cannot be compiled (a template saved before validation
    refused it): each message of it then fails alone, without compiling it again."""
    compiled = _email_compile(subject, preheader, body_markdown)
    if isinstance(compiled, str):
        raise TemplateCompileError(compiled)
    return compiled


@lru_cache(maxsize=256)
def _email_compile(subject: str, preheader: str, body_markdown: str) -> CompiledEmail | str:
    """The compiled email, or what stops it compiling (kept, like a compiled one)."""
    try:
        with _compiling():
            html = markdown_to_html_source(body_markdown)
            return CompiledEmail(
                subject=TEXT_ENV.from_string(subject),
                preheader=TEXT_ENV.from_string(preheader),
                html=HTML_ENV.from_string(html),
                text=TEXT_ENV.from_string(markdown_to_text_source(body_markdown)),
                links_to_check=any(not _fixed_scheme(m) for m in _LINK_ATTRIBUTE.finditer(html)),
            )
    except TemplateSyntaxError as error:
        return str(TemplateProblem(error.lineno, syntax_message(error.message or "")))
    except TemplateError as error:
        return error.message or TOO_DEEP


def _present(value) -> bool:
    return value not in (None, "", [], {})


def merge_context(source: dict) -> dict:
    """The plain dict a template sees, computed from the source by each declared field.
    Empty values are left out, so they are *undefined* and `default("there")` applies."""
    context = {}
    for name, merge_field in MERGE_FIELDS.items():
        value = merge_field.compute(source)
        if isinstance(value, dict):
            value = {key: item for key, item in value.items() if _present(item)}
        if _present(value) or name == "custom":
            context[name] = value
    return context


def sample_context(*, custom_keys: Iterable[str] = ()) -> dict:
    context = {name: merge_field.sample for name, merge_field in MERGE_FIELDS.items()}
    context["custom"] = {key: f"[{key}]" for key in custom_keys}
    return context


def candidate_values(candidate, *, pool_name: str = "") -> dict:
    """The candidate's part of the merge source, as plain values. `pool_name`: the talent pool
    through which the candidate is in the campaign (see audience.campaign_pool_names)."""
    return {
        "first_name": candidate.first_name,
        "last_name": candidate.last_name,
        "current_title": candidate.current_title,
        "current_company": candidate.current_company,
        "skills": list(candidate.skills or []),
        "city": candidate.city,
        "country": candidate.country,
        "custom_fields": dict(candidate.custom_fields or {}),
        "pool_name": pool_name,
    }


def merge_source(*, candidate: dict, organization, recruiter: dict, links: dict) -> dict:
    return {
        "candidate": candidate,
        "organization": {"name": organization.name},
        "recruiter": recruiter,
        "links": links,
    }


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    preheader: str
    html_body: str
    text_body: str


def _html_context(context: dict) -> dict:
    """The context of the HTML part: a multi-line signature keeps its line breaks (escaped
    first, so whatever the recruiter typed stays text)."""
    signature = (context.get("recruiter") or {}).get("signature")
    if not signature or "\n" not in signature:
        return context
    lines = escape(signature).split("\n")
    return {
        **context,
        "recruiter": {**context["recruiter"], "signature": Markup("<br>\n").join(lines)},
    }


def _render(template, context: dict) -> str:
    """One part, rendered; whatever goes wrong is a TemplateError (`{{ first_name + 1 }}`
    passes validation and fails only here, and Jinja's own filters raise AssertionError and
    more), so previews show it and the dispatcher records it on the message and goes on with the
    others instead of losing the chunk."""
    try:
        return template.render(context)
    except TemplateError:
        raise
    except Exception as error:
        raise TemplateRuntimeError(f"{type(error).__name__}: {error}") from error


def email_render(compiled: CompiledEmail, context: dict) -> RenderedEmail:
    subject = " ".join(_render(compiled.subject, context).split())[:998]
    html = _render(compiled.html, _html_context(context))
    return RenderedEmail(
        subject=subject,
        preheader=" ".join(_render(compiled.preheader, context).split()),
        html_body=safe_links(html) if compiled.links_to_check else html,
        text_body=_render(compiled.text, context).strip() + "\n",
    )
