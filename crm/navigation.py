"""Which top-level navigation entry a page belongs to.

Most pages belong to their app's entry (Candidates, Talent pools, Campaigns). Organisation
settings pages live in several apps (custom fields in candidates; email settings, topics and
role families in campaigns) but belong under Settings, where their tabs are
(templates/crm/settings_tabs.html).
"""

SETTINGS_VIEWS = {
    "organization_settings",
    "members",
    "member_invite",
    "member_remove",
    "candidates:fields",
    "candidates:field_add",
    "candidates:field_edit",
    "campaigns:email_settings",
    "campaigns:sending_domain_edit",
    "campaigns:topic_list",
    "campaigns:topic_edit",
    "campaigns:role_family_list",
    "campaigns:role_family_edit",
    "campaigns:suppression_list",
}
APP_SECTIONS = {"candidates", "pipelines", "campaigns", "analytics"}


def nav_section(resolver_match) -> str:
    if resolver_match is None:
        return ""
    if resolver_match.view_name in SETTINGS_VIEWS:
        return "settings"
    if resolver_match.app_name in APP_SECTIONS:
        return resolver_match.app_name
    return resolver_match.url_name or ""
