"""One convention for leaving a form without saving: a Cancel (or, read-only, Back) link styled
as a secondary button, `<a class="btn btn-outline-secondary">`, back to where the user came
from, beside the form's primary button. Read from the templates themselves, so a new form
cannot bring back a plain link or a btn-link Cancel."""

import re
from pathlib import Path

from django.conf import settings

BASE_DIR = Path(settings.BASE_DIR)
LINK = re.compile(r"<a\b([^>]*)>(.*?)</a>", re.S)
CLASS = re.compile(r'class="([^"]*)"')


def _templates() -> list[Path]:
    return sorted(
        path
        for pattern in ("templates/**/*.html", "*/templates/**/*.html")
        for path in BASE_DIR.glob(pattern)
        if "node_modules" not in path.parts
    )


def _cancel_links() -> list[tuple[str, str]]:
    """(template, class attribute) of every link whose text is Cancel."""
    found = []
    for path in _templates():
        for attributes, content in LINK.findall(path.read_text()):
            if re.search(r"\bCancel\b", re.sub(r"{%.*?%}", " ", content)):
                classes = CLASS.search(attributes)
                found.append((str(path.relative_to(BASE_DIR)), classes[1] if classes else ""))
    return found


def test_cancel_links_are_outline_secondary_buttons():
    links = _cancel_links()

    odd = [(name, classes) for name, classes in links if "btn btn-outline-secondary" not in classes]

    assert len(links) > 15  # the scan found the forms' Cancel links
    assert odd == []
