"""The organisation's home page is made of panels that the apps contribute in their
`AppConfig.ready()` (crm is the lowest layer and imports none of them). A panel is a template
rendered with the page's context (`organization`, `membership`, `request`, `user`); it loads
its own data through its app's template tags, in a query or two."""

HOME_PANELS: list[str] = []


def home_panel_register(template_name: str) -> None:
    if template_name not in HOME_PANELS:
        HOME_PANELS.append(template_name)
