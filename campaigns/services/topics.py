"""Email topics: what a campaign is about, and what candidates opt out of in the preference
centre. Each organisation edits its own list (Settings → Email topics); a topic's `key` is
fixed at creation so campaigns and candidates' opt-outs keep pointing at it after a rename.
The life cycle is services/choice_lists.py's; a topic has a description, and an organisation
keeps at least one active topic because every campaign needs one."""

from campaigns.models import DefaultTopic, Topic
from campaigns.services import choice_lists
from campaigns.services.choice_lists import ChoiceList

TOPICS = ChoiceList(
    model=Topic,
    defaults=DefaultTopic,
    noun="topic",
    fallback_key="topic",
    has_description=True,
    keep_one_active="Keep at least one topic: campaigns need one.",
)


def topics_ensure_defaults(*, organization) -> None:
    """Give an organisation without any topic the default ones (idempotent)."""
    choice_lists.choices_ensure_defaults(choice_list=TOPICS, organization=organization)


def topics_for(*, organization, include_archived: bool = False) -> list[Topic]:
    return choice_lists.choices_for(
        choice_list=TOPICS, organization=organization, include_archived=include_archived
    )


def topic_choices(
    *, organization, with_descriptions: bool = False, keep: str = ""
) -> list[tuple[str, str]]:
    """(key, label) of the active topics; candidates also see each topic's description.
    `keep`: a topic a campaign already has stays a valid choice even if archived since (marked
    so), rather than a settings form silently switching the campaign to another topic."""
    return [
        (
            topic.key,
            f"{topic.name} — {topic.description}"
            if with_descriptions and topic.description
            else f"{topic.name} (archived)"
            if topic.is_archived
            else topic.name,
        )
        for topic in topics_for(organization=organization, include_archived=bool(keep))
        if not topic.is_archived or topic.key == keep
    ]


def topic_create(*, organization, name: str, description: str = "") -> Topic:
    return choice_lists.choice_create(
        choice_list=TOPICS, organization=organization, name=name, description=description
    )


def topic_update(*, topic: Topic, name: str, description: str = "") -> Topic:
    return choice_lists.choice_update(
        choice_list=TOPICS, entry=topic, name=name, description=description
    )


def topic_archive(*, topic: Topic) -> Topic:
    """Hide it from new campaigns (a draft on it cannot launch: campaign_launch_problems) and
    from the preference centre, except for candidates a running campaign still emails about
    it (preferences.archived_topics_received). Opt-outs stay in force."""
    return choice_lists.choice_archive(choice_list=TOPICS, entry=topic)


def topic_restore(*, topic: Topic) -> Topic:
    return choice_lists.choice_restore(entry=topic)
