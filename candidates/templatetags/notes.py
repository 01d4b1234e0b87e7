"""A note's body as Markdown (`{{ note.body|note_markdown }}`), rendered safely.

The same parser as campaign emails (campaigns/services/rendering.py), with what a note may not
do turned off: raw HTML is escaped, not passed through; no images (a note must not load
anything from elsewhere); no headings (a note sits under the page's own headings). Links keep
markdown-it's check of their address (no `javascript:`) and get rel="nofollow noopener"."""

from django import template
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

register = template.Library()

_markdown = (
    MarkdownIt("commonmark", {"html": False, "breaks": True})
    .enable("strikethrough")
    .disable(["image", "heading", "lheading"])
)


def _link_open(self, tokens, idx, options, env) -> str:
    tokens[idx].attrSet("rel", "nofollow noopener")
    return self.renderToken(tokens, idx, options, env)


_markdown.add_render_rule("link_open", _link_open)


def note_html(body: str) -> SafeString:
    """The note's Markdown as HTML: every character the author typed is escaped."""
    return mark_safe(_markdown.render(body))  # noqa: S308 (html=False: markdown-it escapes it)


register.filter("note_markdown", note_html)
