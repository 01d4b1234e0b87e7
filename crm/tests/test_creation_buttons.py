"""One verb for opening a creation page: "New …" (New candidate, New pool, New field), whether
the link sits in a page header or an empty state; a form's way out without saving is Cancel,
not Back. Read from the templates of the candidate, pool and settings pages themselves, so a
new page cannot bring back "Add …" or "Create …" for the same kind of link."""

import re
from pathlib import Path

from django.conf import settings

BASE_DIR = Path(settings.BASE_DIR)
FOLDERS = ("templates", "candidates/templates", "pipelines/templates")
LINK = re.compile(r"<a\b([^>]*)>(.*?)</a>", re.S)
# A URL name that opens a creation page, written in a link's href or held in a variable.
CREATION_HREF = re.compile(
    r"""href="(?:{% url '[\w:]*(?::new|_create|_add)'[^"]*|{{ (?:new|create|add)_url }})\""""
)
EMPTY_STATE = re.compile(r'{% include "includes/empty_state.html" with [^%]*%}')


def _templates() -> list[Path]:
    return sorted(path for folder in FOLDERS for path in (BASE_DIR / folder).glob("**/*.html"))


def _words(html: str) -> str:
    return " ".join(re.sub(r"{[%#].*?[%#]}|<[^>]+>", " ", html).split())


def _name(path: Path) -> str:
    return str(path.relative_to(BASE_DIR))


def test_links_to_a_creation_page_say_new():
    labels = [
        (_name(path), _words(content))
        for path in _templates()
        for attributes, content in LINK.findall(path.read_text())
        if CREATION_HREF.search(attributes)
    ]
    labels += [
        (_name(path), re.search(r'action_label="([^"]*)"', include)[1])
        for path in _templates()
        for include in EMPTY_STATE.findall(path.read_text())
        if re.search(r"action_url=(?:new|create|add)_url\b", include)
    ]

    assert len(labels) >= 10  # the scan found the links
    assert [(name, label) for name, label in labels if not label.startswith("New ")] == []


def test_forms_leave_with_cancel_not_back():
    backs = [
        (_name(path), _words(content))
        for path in _templates()
        if "<form" in path.read_text()
        for attributes, content in LINK.findall(path.read_text())
        if "btn-outline-secondary" in attributes and _words(content).startswith("Back")
    ]

    assert backs == []
