"""Settings → Email and Settings → Email topics; topics in campaigns and the preference centre;
audiences from talent pools."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from campaigns.forms import BroadcastForm
from campaigns.models import (
    Campaign,
    CandidateEmailPreference,
    EmailSettings,
    Message,
    SendingDomain,
    Topic,
)
from campaigns.services.audience import audience_queryset
from campaigns.services.campaigns import campaign_launch, campaign_launch_problems
from campaigns.services.dispatch import dispatch_due
from campaigns.services.sending import messages_send
from campaigns.services.tokens import candidate_token
from campaigns.services.topics import topic_create, topics_for
from campaigns.tests.factories import SavedSearchFactory, make_broadcast, make_candidates
from candidates.tests.factories import CandidateFactory
from pipelines.models import Pool
from pipelines.tests.factories import PoolFactory, PoolMembershipFactory

# --- email settings ---


def _email_url(org):
    return reverse("campaigns:email_settings", args=[org.slug])


def _valid_post(**overrides):
    data = {
        "sender-sender_name": "Acme Talent",
        "sender-sender_email": "talent@acme.example",
        "sender-postal_address": "1 Example Street, London",
        "rules-track_opens": "",
        "rules-track_clicks": "on",
        "rules-frequency_cap_messages": "2",
        "rules-frequency_cap_days": "7",
        "rules-consent_required": "on",
        "rules-sender_daily_cap": "500",
    }
    data.update(overrides)
    return data


def test_email_settings_saves_sender_and_rules(admin_client, org):
    response = admin_client.post(_email_url(org), _valid_post())
    org.refresh_from_db()
    with scopes_disabled():
        settings = EmailSettings.objects.get(organization=org)
    assert response.status_code == 302
    assert (org.sender_email, org.postal_address) == (
        "talent@acme.example",
        "1 Example Street, London",
    )
    assert settings.track_opens is False
    assert (settings.frequency_cap_messages, settings.frequency_cap_days) == (2, 7)
    assert settings.consent_required is True
    assert settings.sender_daily_cap == 500
    with scopes_disabled():
        domains = list(
            SendingDomain.objects.filter(organization=org).values_list("domain", flat=True)
        )
    assert domains == ["acme.example"]  # the sender's domain, ready for a warm-up


def test_email_settings_invalid_rerenders_with_field_errors(admin_client, org):
    response = admin_client.post(
        _email_url(org),
        _valid_post(**{"rules-frequency_cap_days": "0", "sender-postal_address": ""}),
    )
    body = response.content.decode()
    with scopes_disabled():
        saved = EmailSettings.objects.filter(organization=org, consent_required=True).exists()
    assert response.status_code == 200
    assert "Give the number of days the cap counts over." in body
    assert "This field is required." in body
    assert saved is False


def test_email_settings_shows_why_campaigns_cannot_launch(admin_client, org):
    org.postal_address = ""
    org.save()
    response = admin_client.get(_email_url(org))
    assert response.status_code == 200
    assert "No postal address" in response.content.decode()


def test_email_settings_postal_address_box_shows_a_five_line_address(admin_client, org):
    org.postal_address = "Northwind Talent Ltd\nFloor 3\n12 Market Street\nLondon\nUnited Kingdom"
    org.save()

    body = admin_client.get(_email_url(org)).content.decode()

    start = body.index('name="sender-postal_address"')
    textarea = body[body.rindex("<textarea", 0, start) : body.index(">", start)]
    assert 'rows="5"' in textarea


def test_email_settings_roles_and_tenancy(client, recruiter_client, outsider_client, org):
    assert "/accounts/login/" in client.get(_email_url(org))["Location"]
    assert recruiter_client.get(_email_url(org)).status_code == 403
    assert recruiter_client.post(_email_url(org), _valid_post()).status_code == 403
    assert outsider_client.get(_email_url(org)).status_code == 404


# --- sending domains: the warm-up ---


def _domain_url(org, domain):
    return reverse("campaigns:sending_domain_edit", args=[org.slug, domain.pk])


def test_sending_domain_warm_up_is_started_from_the_settings_page(admin_client, org):
    page = admin_client.get(_email_url(org)).content.decode()
    with scopes_disabled():
        domain = SendingDomain.objects.get(organization=org)
    assert "acme.example" in page and "No warm-up: no daily limit" in page

    response = admin_client.post(
        _domain_url(org, domain),
        {
            "warmup": "on",
            "warmup_started_on": timezone.localdate().isoformat(),
            "warmup_first_day": "40",
            "warmup_growth_percent": "50",
            "warmup_target_per_day": "100",
        },
    )
    domain.refresh_from_db()
    ramp = admin_client.get(_domain_url(org, domain)).content.decode()
    settings_page = admin_client.get(_email_url(org)).content.decode()

    assert response.status_code == 302
    assert (domain.warmup_started_on, domain.warmup_first_day) == (timezone.localdate(), 40)
    assert (domain.warmup_growth_percent, domain.warmup_target_per_day) == (50, 100)
    assert [n for n in (40, 60, 90, 135) if f'class="text-end">{n}<' in ramp] == [40, 60, 90]
    assert "Day 1: 0 of 40 emails used today" in settings_page


def test_sending_domain_form_errors_rerender_and_change_nothing(admin_client, org):
    admin_client.get(_email_url(org))
    with scopes_disabled():
        domain = SendingDomain.objects.get(organization=org)
    response = admin_client.post(
        _domain_url(org, domain),
        {
            "warmup": "on",
            "warmup_started_on": "",
            "warmup_first_day": "500",
            "warmup_growth_percent": "5",
            "warmup_target_per_day": "100",
        },
    )
    body = response.content.decode()
    domain.refresh_from_db()
    assert response.status_code == 200
    assert "Choose the day the warm-up starts." in body
    assert "Ensure this value is greater than or equal to 10." in body
    assert "The target must be more than the first day&#x27;s amount." in body
    assert domain.warmup_started_on is None


def test_sending_domain_warm_up_can_be_stopped(admin_client, org):
    with scopes_disabled():
        domain, _ = SendingDomain.objects.update_or_create(
            organization=org,
            domain="acme.example",
            defaults={"warmup_started_on": timezone.localdate()},
        )
    response = admin_client.post(
        _domain_url(org, domain),
        {
            "warmup_started_on": "",
            "warmup_first_day": "50",
            "warmup_growth_percent": "100",
            "warmup_target_per_day": "5000",
        },
    )
    domain.refresh_from_db()
    assert response.status_code == 302
    assert domain.warmup_started_on is None


def test_sending_domain_roles_and_tenancy(client, recruiter_client, outsider_client, org):
    with scopes_disabled():
        domain, _ = SendingDomain.objects.get_or_create(organization=org, domain="acme.example")
    url = _domain_url(org, domain)
    assert "/accounts/login/" in client.get(url)["Location"]
    assert recruiter_client.get(url).status_code == 403
    assert recruiter_client.post(url, {"warmup": "on"}).status_code == 403
    assert outsider_client.get(url).status_code == 404


def test_launch_is_blocked_with_the_reason_without_a_sender(org, recruiter_user):
    org.sender_email = ""
    org.save()
    campaign = make_broadcast(org, user=recruiter_user)
    with scope(organization=org):
        problems = campaign_launch_problems(campaign=campaign)
    assert any("no sender address" in p for p in problems)


# --- topics ---


def _topics_url(org):
    return reverse("campaigns:topic_list", args=[org.slug])


def test_topics_page_starts_with_the_defaults_and_adds_one(admin_client, org):
    response = admin_client.get(_topics_url(org))
    added = admin_client.post(
        _topics_url(org), {"name": "Alumni news", "description": "For former colleagues"}
    )
    with scopes_disabled():
        keys = list(Topic.objects.filter(organization=org).values_list("key", flat=True))
    assert response.status_code == 200
    assert "Job opportunities" in response.content.decode()
    assert added.status_code == 302
    assert keys == ["jobs", "events", "newsletter", "alumni-news"]


def test_topics_duplicate_name_rerenders_with_the_error(admin_client, org):
    admin_client.get(_topics_url(org))
    response = admin_client.post(_topics_url(org), {"name": "events"})
    assert response.status_code == 200
    assert "There is already a topic with this name." in response.content.decode()


def test_topic_rename_keeps_the_key_and_candidates_choices(admin_client, org):
    with scope(organization=org):
        jobs = next(t for t in topics_for(organization=org) if t.key == "jobs")
    url = reverse("campaigns:topic_edit", args=[org.slug, jobs.pk])
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(url, {"name": "Roles for you", "description": ""})
    with scopes_disabled():
        jobs.refresh_from_db()
    assert response.status_code == 302
    assert (jobs.key, jobs.name) == ("jobs", "Roles for you")


def test_topic_archive_hides_it_from_new_campaigns_and_the_preference_centre(
    admin_client, client, org, admin_user
):
    with scope(organization=org):
        events = next(t for t in topics_for(organization=org) if t.key == "events")
    admin_client.post(reverse("campaigns:topic_archive", args=[org.slug, events.pk]))
    candidate = CandidateFactory(organization=org)
    with scope(organization=org):
        choices = [
            k for k, _ in BroadcastForm(organization=org, user=admin_user).fields["topic"].choices
        ]
    page = client.get(
        reverse(
            "campaigns_public:preferences",
            args=[candidate_token(organization_id=org.pk, candidate_id=candidate.pk)],
        )
    )
    assert choices == ["jobs", "newsletter"]
    assert "Events" not in page.content.decode()
    restored = admin_client.post(
        reverse("campaigns:topic_archive", args=[org.slug, events.pk]), {"restore": "1"}
    )
    with scopes_disabled():
        events.refresh_from_db()
    assert restored.status_code == 302
    assert events.archived_at is None


def test_topic_the_last_one_cannot_be_archived(admin_client, org):
    with scope(organization=org):
        topics = topics_for(organization=org)
    for topic in topics:
        admin_client.post(reverse("campaigns:topic_archive", args=[org.slug, topic.pk]))
    with scopes_disabled():
        active = Topic.objects.filter(organization=org, archived_at__isnull=True).count()
    assert active == 1


def test_topics_roles_and_tenancy(client, recruiter_client, outsider_client, org):
    assert "/accounts/login/" in client.get(_topics_url(org))["Location"]
    assert recruiter_client.get(_topics_url(org)).status_code == 403
    assert outsider_client.get(_topics_url(org)).status_code == 404


@pytest.mark.parametrize("extra", [0, 2])
def test_topics_page_query_count_does_not_grow_with_topics(admin_client, org, extra):
    with scope(organization=org):
        for index in range(extra):
            topic_create(organization=org, name=f"Extra {index}")
    admin_client.get(_topics_url(org))
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(_topics_url(org))
    assert response.status_code == 200
    assert len(queries) == 4  # the same with 1 and 3 topics: no query per topic


def test_preference_centre_opt_out_of_a_custom_topic_is_respected(client, org, recruiter_user):
    (candidate,) = make_candidates(org, 1)
    with scope(organization=org):
        alumni = topic_create(organization=org, name="Alumni news")
    token = candidate_token(organization_id=org.pk, candidate_id=candidate.pk)
    client.post(
        reverse("campaigns_public:preferences", args=[token]),
        {"topics": ["jobs"], "pause_months": "0", "current_title": "CTO", "city": "Leeds"},
    )
    campaign = make_broadcast(org, user=recruiter_user, topic=alumni.key)
    with scope(organization=org):
        preference = CandidateEmailPreference.objects.get(candidate=candidate)
        campaign_launch(campaign=campaign, user=recruiter_user)
        dispatch_due()
        message = Message.objects.get(campaign=campaign)
        messages_send(organization=org, message_ids=[message.pk])
        message.refresh_from_db()
    candidate.refresh_from_db()
    assert "alumni-news" in preference.opted_out_topics
    assert message.skip_reason == Message.SkipReason.TOPIC_OPTED_OUT
    assert (candidate.current_title, candidate.city) == ("CTO", "Leeds")


# --- audience ---


def _pool_campaign(org, user, *, pools=(), excluded_pools=(), searches=()):
    with scopes_disabled():
        campaign = make_broadcast(org, user=user)
        campaign.saved_searches.set(searches)
        campaign.pools.set(pools)
        campaign.excluded_pools.set(excluded_pools)
    return campaign


def test_audience_from_pools_and_smart_pools_minus_excluded_pools(org, recruiter_user):
    static = PoolFactory(organization=org)
    members = [PoolMembershipFactory(pool=static).candidate for _ in range(3)]
    tagged = make_candidates(org, 2, tags=["rust"])
    smart = PoolFactory(
        organization=org,
        kind=Pool.Kind.SMART,
        saved_search=SavedSearchFactory(organization=org, query={"tags": ["rust"]}),
    )
    excluded = PoolFactory(organization=org)
    PoolMembershipFactory(pool=excluded, candidate=members[0])
    make_candidates(org, 2, tags=["other"])
    campaign = _pool_campaign(org, recruiter_user, pools=[static, smart], excluded_pools=[excluded])
    with scope(organization=org):
        audience = set(audience_queryset(campaign=campaign).values_list("pk", flat=True))
    assert audience == {members[1].pk, members[2].pk, *(c.pk for c in tagged)}


def test_audience_of_a_text_search_is_every_match_not_the_lists_ranked_few(
    org, recruiter_user, settings
):
    settings.CANDIDATE_SEARCH_RANK_LIMIT = 2
    erlang = make_candidates(org, 4, headline="Erlang developer")
    make_candidates(org, 2, headline="Pastry chef")
    campaign = _pool_campaign(
        org,
        recruiter_user,
        searches=[SavedSearchFactory(organization=org, query={"q": ["erlang"]})],
    )
    with scope(organization=org):
        audience = set(audience_queryset(campaign=campaign).values_list("pk", flat=True))
    assert audience == {c.pk for c in erlang}


def test_audience_saved_search_minus_a_pool(org, recruiter_user):
    newsletter = make_candidates(org, 3)
    excluded = PoolFactory(organization=org)
    PoolMembershipFactory(pool=excluded, candidate=newsletter[0])
    with scopes_disabled():
        campaign = make_broadcast(org, user=recruiter_user)
        campaign.excluded_pools.set([excluded])
    with scope(organization=org):
        audience = set(audience_queryset(campaign=campaign).values_list("pk", flat=True))
    assert audience == {newsletter[1].pk, newsletter[2].pk}


def test_audience_size_shows_before_launch_and_a_pool_alone_can_launch(
    recruiter_client, org, recruiter_user
):
    pool = PoolFactory(organization=org)
    for _ in range(4):
        PoolMembershipFactory(pool=pool)
    campaign = _pool_campaign(org, recruiter_user, pools=[pool])
    page = recruiter_client.get(reverse("campaigns:detail", args=[org.slug, campaign.pk]))
    with scope(organization=org):
        enrolled = campaign_launch(campaign=campaign, user=recruiter_user)
    assert "4</span>" in page.content.decode()
    assert pool.name in page.content.decode()
    assert enrolled == 4


def test_broadcast_form_offers_pools_and_creates_the_campaign(
    recruiter_client, org, recruiter_user
):
    from campaigns.tests.factories import EmailTemplateFactory

    template = EmailTemplateFactory(organization=org)
    pool, other = PoolFactory(organization=org), PoolFactory(organization=org)
    response = recruiter_client.post(
        reverse("campaigns:create", args=[org.slug]),
        {
            "name": "Pool news",
            "template": template.pk,
            "topic": "newsletter",
            "pools": [pool.pk],
            "excluded_pools": [other.pk],
            "send_when": "now",
        },
    )
    with scopes_disabled():
        campaign = Campaign.objects.get(name="Pool news")
        pools = (list(campaign.pools.all()), list(campaign.excluded_pools.all()))
    assert response.status_code == 302
    assert pools == ([pool], [other])


def test_broadcast_form_needs_a_search_or_a_pool(recruiter_client, org):
    from campaigns.tests.factories import EmailTemplateFactory

    template = EmailTemplateFactory(organization=org)
    response = recruiter_client.post(
        reverse("campaigns:create", args=[org.slug]),
        {"name": "Nobody", "template": template.pk, "topic": "jobs", "send_when": "now"},
    )
    assert response.status_code == 200
    assert "Choose who receives it" in response.content.decode()


def test_preference_centre_shows_topic_descriptions(client, org):
    candidate = CandidateFactory(organization=org)
    with scope(organization=org):
        topic_create(organization=org, name="Alumni news", description="Once a quarter")
    token = candidate_token(organization_id=org.pk, candidate_id=candidate.pk)
    page = client.get(reverse("campaigns_public:preferences", args=[token]))
    assert "Alumni news — Once a quarter" in page.content.decode()


# --- audit: number and date inputs stay inside realistic bounds (never a 500) ---


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("warmup_first_day", "3000000000", "less than or equal to 1000000"),
        ("warmup_target_per_day", "3000000000", "less than or equal to 1000000"),
        ("warmup_growth_percent", "40000", "less than or equal to 1000"),
        ("warmup_started_on", "9999-12-31", "Choose a day within the next 12 months."),
    ],
)
def test_sending_domain_form_refuses_values_out_of_bounds(admin_client, org, field, value, message):
    admin_client.get(_email_url(org))
    with scopes_disabled():
        domain = SendingDomain.objects.get(organization=org)
    data = {
        "warmup": "on",
        "warmup_started_on": timezone.localdate().isoformat(),
        "warmup_first_day": "40",
        "warmup_growth_percent": "50",
        "warmup_target_per_day": "100",
        field: value,
    }

    response = admin_client.post(_domain_url(org, domain), data)

    domain.refresh_from_db()
    assert response.status_code == 200
    assert message in response.content.decode()
    assert domain.warmup_started_on is None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("rules-frequency_cap_messages", "40000", "less than or equal to 1000"),
        ("rules-frequency_cap_days", "40000", "less than or equal to 365"),
        ("rules-sender_daily_cap", "3000000000", "less than or equal to 1000000"),
    ],
)
def test_email_settings_refuse_caps_out_of_bounds(admin_client, org, field, value, message):
    response = admin_client.post(_email_url(org), _valid_post(**{field: value}))

    assert response.status_code == 200
    assert message in response.content.decode()
    with scopes_disabled():
        assert not EmailSettings.objects.filter(organization=org, sender_daily_cap=500).exists()
