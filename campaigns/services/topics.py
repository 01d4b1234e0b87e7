"""Email topics: what a campaign is about, and what candidates opt out of in the preference
centre. Each organisation edits its own list (Settings → Email topics); a topic's `key` is
fixed at creation so campaigns and candidates' opt-outs keep pointing at it after a rename."""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from campaigns.models import DefaultTopic, Topic


def topics_ensure_defaults(*, organization) -> None:
    """Give an organisation without any topic the default ones (idempotent)."""
    if Topic.objects.filter(organization=organization).exists():
        return
    Topic.objects.bulk_create(
        [
            Topic(organization=organization, key=value, name=label, position=index)
            for index, (value, label) in enumerate(DefaultTopic.choices)
        ],
        ignore_conflicts=True,
    )


def topics_for(*, organization, include_archived: bool = False) -> list[Topic]:
    topics_ensure_defaults(organization=organization)
    queryset = Topic.objects.filter(organization=organization)
    if not include_archived:
        queryset = queryset.filter(archived_at__isnull=True)
    return list(queryset)


def topic_choices(*, organization, with_descriptions: bool = False) -> list[tuple[str, str]]:
    """(key, label) of the active topics; candidates also see each topic's description."""
    return [
        (
            topic.key,
            f"{topic.name} — {topic.description}"
            if with_descriptions and topic.description
            else topic.name,
        )
        for topic in topics_for(organization=organization)
    ]


def _check_name(*, organization, name: str, exclude_pk: int | None = None) -> None:
    others = Topic.objects.filter(organization=organization, name__iexact=name.strip())
    if exclude_pk:
        others = others.exclude(pk=exclude_pk)
    if others.exists():
        raise ValidationError({"name": "There is already a topic with this name."})


def _free_key(*, organization, name: str) -> str:
    base = (slugify(name) or "topic")[:16].strip("-") or "topic"
    taken = set(
        Topic.objects.filter(organization=organization, key__startswith=base).values_list(
            "key", flat=True
        )
    )
    key, number = base, 2
    while key in taken:
        key, number = f"{base}-{number}", number + 1
    return key


@transaction.atomic
def topic_create(*, organization, name: str, description: str = "") -> Topic:
    topics_ensure_defaults(organization=organization)
    _check_name(organization=organization, name=name)
    last = Topic.objects.filter(organization=organization).order_by("-position").first()
    try:
        with transaction.atomic():
            return Topic.objects.create(
                organization=organization,
                key=_free_key(organization=organization, name=name),
                name=name.strip(),
                description=description.strip(),
                position=(last.position + 1) if last else 0,
            )
    except IntegrityError as error:  # a concurrent create with the same name
        raise ValidationError({"name": "There is already a topic with this name."}) from error


def topic_update(*, topic: Topic, name: str, description: str = "") -> Topic:
    _check_name(organization=topic.organization, name=name, exclude_pk=topic.pk)
    topic.name, topic.description = name.strip(), description.strip()
    topic.save(update_fields=["name", "description"])
    return topic


def topic_archive(*, topic: Topic) -> Topic:
    """Hide it from new campaigns and the preference centre. Opt-outs stay in force."""
    active = Topic.objects.filter(organization=topic.organization, archived_at__isnull=True)
    if topic.archived_at is None and active.count() <= 1:
        raise ValidationError("Keep at least one topic: campaigns need one.")
    if topic.archived_at is None:
        topic.archived_at = timezone.now()
        topic.save(update_fields=["archived_at"])
    return topic


def topic_restore(*, topic: Topic) -> Topic:
    topic.archived_at = None
    topic.save(update_fields=["archived_at"])
    return topic
