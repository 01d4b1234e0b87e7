"""A campaign's results in the order of its chart: `{% results_labels as labels %}` for a
table's headers, `{% for figure in row|result_figures %}` for its cells (or a phone's grid).
The chart, the table and the grid thereby describe the same measures in the same order
(campaigns.selectors.RESULTS_CHART_MEASURES)."""

from django import template

from campaigns.selectors import RESULTS_CHART_MEASURES

register = template.Library()

# The rate shown under each figure (a row of campaign_step_results); sent has none.
RATE_KEYS = {
    "delivered": "delivery_rate",
    "opened": "open_rate",
    "clicked": "click_rate",
    "replied": "reply_rate",
    "unsubscribed": "unsubscribe_rate",
    "bounced": "bounce_rate",
}


@register.simple_tag
def results_labels() -> list[str]:
    return [label for _key, label in RESULTS_CHART_MEASURES]


@register.filter
def result_figures(row: dict) -> list[dict]:
    """One dict per measure: key, label, value and rate (a percentage, or None)."""
    return [
        {
            "key": key,
            "label": label,
            "value": row[key],
            "rate": row.get(RATE_KEYS[key]) if key in RATE_KEYS else None,
        }
        for key, label in RESULTS_CHART_MEASURES
    ]
