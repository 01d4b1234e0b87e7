"""Reading rendered pages in tests: the elements of a page and the form around a control, from
Django's own HTML parser (django.test.html)."""

from collections.abc import Iterator

from django.test.html import Element, parse_html


def elements(node: Element | str) -> Iterator[Element]:
    """Every element below `node` (a parsed element or a page's HTML), in document order."""
    if isinstance(node, str):
        node = parse_html(node)
    for child in node.children:
        if isinstance(child, Element):
            yield child
            yield from elements(child)


def attributes(element: Element) -> dict[str, str | None]:
    return dict(element.attributes)


def text(element: Element) -> str:
    """The element's text, its whitespace collapsed."""
    parts = [child if isinstance(child, str) else text(child) for child in element.children]
    return " ".join(" ".join(parts).split())


def headings(html: str, level: int) -> list[str]:
    """The text of the page's <h{level}>s."""
    return [text(element) for element in elements(html) if element.name == f"h{level}"]


def form_of(html: str, control_id: str) -> Element:
    """The <form> holding the control with id `control_id`."""
    for form in elements(html):
        if form.name == "form" and any(
            attributes(element).get("id") == control_id for element in elements(form)
        ):
            return form
    raise AssertionError(f"No form holds #{control_id}.")


def submit_buttons(form: Element) -> list[Element]:
    return [
        element
        for element in elements(form)
        if element.name == "button" and attributes(element).get("type", "submit") == "submit"
    ]


def applies_with_show_button(html: str, control_id: str) -> bool:
    """Whether the GET filter holding #control_id applies only when its visible Show button is
    pressed: choosing an option does not reload the page by itself (WCAG 3.2.2 On Input; one
    arrow key in a select would otherwise navigate away)."""
    form = form_of(html, control_id)
    control = next(e for e in elements(form) if attributes(e).get("id") == control_id)
    buttons = [text(button) for button in submit_buttons(form)]
    return (
        attributes(form).get("method") == "get"
        and "data-autosubmit" not in attributes(control)
        and not any(e.name == "noscript" for e in elements(form))
        and buttons == ["Show"]
    )
