"""What candidates are interested in (role families, other roles, locations, remote): the
preference centre saves it, campaigns target it (broadcasts, sequences and their auto-join),
and recruiters see it on the candidate's profile."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from campaigns.forms import BroadcastForm
from campaigns.models import Campaign, CandidateEmailPreference, Enrollment, Suppression
from campaigns.sequence_forms import SequenceForm
from campaigns.services import role_families as role_family_service
from campaigns.services import sequences
from campaigns.services.audience import audience_queryset
from campaigns.services.campaigns import campaign_launch
from campaigns.services.preferences import candidate_unsubscribe
from campaigns.services.tokens import candidate_token
from campaigns.tests.factories import (
    EmailTemplateFactory,
    SavedSearchFactory,
    make_broadcast,
    make_candidates,
    profile_email_preferences,
)
from candidates.models import Candidate


def url(name, org, *args):
    return reverse(f"campaigns:{name}", args=[org.slug, *args])


def prefer(candidate, **fields) -> CandidateEmailPreference:
    with scopes_disabled():
        return CandidateEmailPreference.objects.create(
            organization_id=candidate.organization_id, candidate=candidate, **fields
        )


def person(org, *, city="Leeds", **preferences) -> Candidate:
    """A candidate tagged for make_broadcast's saved search, with these preferences (none
    given: no preferences row at all)."""
    (candidate,) = make_candidates(org, 1, city=city)
    if preferences:
        prefer(candidate, **preferences)
    return candidate


def audience(campaign) -> set[int]:
    with scopes_disabled():
        campaign.refresh_from_db()
        return set(audience_queryset(campaign=campaign).values_list("pk", flat=True))


def include_unstated(campaign, value: bool) -> None:
    with scopes_disabled():
        Campaign.objects.filter(pk=campaign.pk).update(interest_include_unstated=value)


def families(org, *keys_to_archive) -> list:
    with scope(organization=org):
        found = role_family_service.role_families_for(organization=org)
        for family in found:
            if family.key in keys_to_archive:
                role_family_service.role_family_archive(role_family=family)
    return found


# --- the preference centre ---


def _preferences_url(candidate):
    token = candidate_token(organization_id=candidate.organization_id, candidate_id=candidate.pk)
    return reverse("campaigns_public:preferences", args=[token])


def _preferences_post(**fields):
    return {"topics": ["jobs"], "pause_months": "0", "current_title": "", "city": "", **fields}


def test_preference_centre_saves_the_role_families_ticked_on_post_only(client, org):
    candidate = person(org)
    page = client.get(_preferences_url(candidate), {"role_families": ["data"]}).content.decode()
    client.head(_preferences_url(candidate), {"role_families": ["data"]})
    with scopes_disabled():
        after_get = CandidateEmailPreference.objects.filter(candidate=candidate).exists()
    response = client.post(
        _preferences_url(candidate),
        _preferences_post(role_families=["design", "data"], interested_roles="Developer advocate"),
    )
    with scopes_disabled():
        preference = CandidateEmailPreference.objects.get(candidate=candidate)
    again = client.get(_preferences_url(candidate)).content.decode()
    assert 'name="role_families" value="engineering"' in page
    assert "Data &amp; analytics" in page and "Other roles" in page
    assert after_get is False  # GET and HEAD never change anything
    assert response.status_code == 200 and "Saved" in response.content.decode()
    assert preference.interested_role_families == ["data", "design"]  # the organisation's order
    assert preference.interested_roles == ["Developer advocate"]
    assert (
        'name="role_families" value="data" class="form-check-input" id="id_role_families_1" '
        "checked" in again
    )


def test_preference_centre_hides_archived_families_but_keeps_them_if_chosen(client, org):
    families(org, "finance")
    candidate = person(org, interested_role_families=["finance", "data"])
    page = client.get(_preferences_url(candidate)).content.decode()
    client.post(_preferences_url(candidate), _preferences_post(role_families=["sales"]))
    with scopes_disabled():
        preference = CandidateEmailPreference.objects.get(candidate=candidate)
    assert 'value="finance"' not in page
    assert preference.interested_role_families == ["finance", "sales"]


def test_preference_centre_refuses_a_role_family_of_another_organisation(client, org, other_org):
    with scope(organization=other_org):
        role_family_service.role_family_create(organization=other_org, name="Legal")
    candidate = person(org)
    response = client.post(_preferences_url(candidate), _preferences_post(role_families=["legal"]))
    with scopes_disabled():
        saved = CandidateEmailPreference.objects.filter(candidate=candidate).exists()
    assert response.status_code == 200
    assert "Select a valid choice. legal is not one of the available choices." in (
        response.content.decode()
    )
    assert saved is False


# --- the audience ---


def test_audience_by_role_family_is_an_overlap(org, recruiter_user):
    both = person(org, interested_role_families=["engineering", "data"])
    other = person(org, interested_role_families=["sales"])
    silent = person(org)  # no preferences at all
    no_families = person(org, frequency="weekly", interested_locations=["Leeds"])
    campaign = make_broadcast(org, user=recruiter_user, interest_role_families=["data", "product"])
    with_unstated = audience(campaign)
    include_unstated(campaign, False)
    only_stated = audience(campaign)
    assert with_unstated == {both.pk, silent.pk, no_families.pk}
    assert only_stated == {both.pk}
    assert other.pk not in with_unstated


def test_audience_by_location_whatever_the_case_or_where_they_live(org, recruiter_user):
    named = person(org, city="Leeds", interested_locations=["LONDON", "Paris"])
    lives_there = person(org, city="london", interested_locations=["Berlin"])
    elsewhere = person(org, city="Leeds", interested_locations=["Berlin"])
    silent = person(org, city="Paris")
    campaign = make_broadcast(
        org,
        user=recruiter_user,
        interest_locations=["London", "New York"],
        interest_include_unstated=False,
    )
    only_stated = audience(campaign)
    include_unstated(campaign, True)
    with_unstated = audience(campaign)
    assert only_stated == {named.pk, lives_there.pk}
    assert with_unstated == {named.pk, lives_there.pk, silent.pk}
    assert elsewhere.pk not in with_unstated


def test_audience_location_remote_finds_candidates_open_to_remote(org, recruiter_user):
    remote = person(org, interested_locations=["Paris"], open_to_remote=True)
    office = person(org, interested_locations=["Paris"])
    campaign = make_broadcast(
        org, user=recruiter_user, interest_locations=["Remote"], interest_include_unstated=False
    )
    assert audience(campaign) == {remote.pk}
    assert office.pk not in audience(campaign)


def test_audience_families_and_locations_must_both_fit(org, recruiter_user):
    fits = person(org, interested_role_families=["engineering"], interested_locations=["Berlin"])
    wrong_place = person(
        org, interested_role_families=["engineering"], interested_locations=["Paris"]
    )
    wrong_family = person(org, interested_role_families=["sales"], interested_locations=["Berlin"])
    no_places = person(org, interested_role_families=["engineering"])
    campaign = make_broadcast(
        org,
        user=recruiter_user,
        interest_role_families=["engineering"],
        interest_locations=["berlin"],
    )
    with_unstated = audience(campaign)
    include_unstated(campaign, False)
    assert with_unstated == {fits.pk, no_places.pk}
    assert audience(campaign) == {fits.pk}
    assert not {wrong_place.pk, wrong_family.pk} & with_unstated


def test_audience_interest_targeting_keeps_everyone_excluded_excluded(org, recruiter_user, in_org):
    fits = {"interested_role_families": ["data"]}
    kept = person(org, **fits)
    unsubscribed = person(org, **fits)
    suppressed = person(org, **fits)
    do_not_contact = person(org, **fits)
    left_out = person(org, **fits)
    person(org, interested_role_families=["sales"])  # reachable, but does not fit
    with scopes_disabled():
        Candidate.objects.filter(pk=do_not_contact.pk).update(
            status=Candidate.Status.DO_NOT_CONTACT
        )
        Candidate.objects.filter(pk=left_out.pk).update(tags=["newsletter", "left-out"])
        Suppression.objects.create(
            organization=org, email=suppressed.email.lower(), reason=Suppression.Reason.BOUNCED
        )
    with in_org():
        candidate_unsubscribe(candidate=unsubscribed, source="test")
    campaign = make_broadcast(org, user=recruiter_user, interest_role_families=["data"])
    with scopes_disabled():
        campaign.excluded_saved_searches.set(
            [
                SavedSearchFactory(
                    organization=org, owner=recruiter_user, query={"tags": ["left-out"]}
                )
            ]
        )
    assert audience(campaign) == {kept.pk}


def test_launch_enrolls_only_the_candidates_who_fit(org, recruiter_user, in_org):
    fits = person(org, interested_role_families=["product"])
    person(org, interested_role_families=["sales"])
    campaign = make_broadcast(
        org,
        user=recruiter_user,
        interest_role_families=["product"],
        interest_include_unstated=False,
    )
    with in_org():
        enrolled = campaign_launch(campaign=campaign, user=recruiter_user)
        candidates = list(Enrollment.objects.values_list("candidate_id", flat=True))
    assert (enrolled, candidates) == (1, [fits.pk])


# --- campaign forms and pages ---


def _broadcast_post(org, user, **fields):
    template = EmailTemplateFactory(organization=org)
    search = SavedSearchFactory(organization=org, owner=user)
    return {
        "name": "Data roles",
        "template": template.pk,
        "topic": "jobs",
        "saved_searches": [search.pk],
        "send_when": "now",
        **fields,
    }


def test_campaign_create_saves_the_interest_targeting_and_the_page_shows_it(
    recruiter_client, recruiter_user, org, in_org
):
    person(org, interested_role_families=["data"])
    person(org, interested_role_families=["sales"])
    form_page = recruiter_client.get(url("create", org)).content.decode()
    response = recruiter_client.post(
        url("create", org),
        _broadcast_post(
            org,
            recruiter_user,
            interest_role_families=["data", "design"],
            interest_locations="Berlin,  lisbon , Berlin",
            interest_include_unstated="",
        ),
    )
    with in_org():
        campaign = Campaign.objects.get()
    detail = recruiter_client.get(url("detail", org, campaign.pk)).content.decode()
    targeting = " ".join(detail.split('id="interest-targeting"')[1].split("</dd>")[0].split())
    assert "Also include candidates who haven&#x27;t told us their interests" in form_page
    assert response.status_code == 302
    assert (campaign.interest_role_families, campaign.interest_locations) == (
        ["data", "design"],
        ["Berlin", "lisbon"],
    )
    assert campaign.interest_include_unstated is False
    assert "Data &amp; analytics" in targeting and "Design" in targeting
    assert "Berlin" in targeting and "lisbon" in targeting
    assert "Only candidates who told us their interests." in targeting
    # The one interested in data lives in Leeds and named no place: not in Berlin or Lisbon.
    assert 'class="stat-value">0<' in detail


def test_campaign_page_counts_the_audience_with_the_targeting(
    recruiter_client, recruiter_user, org
):
    person(org, interested_role_families=["data"])
    person(org, interested_role_families=["data"])
    person(org, interested_role_families=["sales"])
    campaign = make_broadcast(
        org, user=recruiter_user, interest_role_families=["data"], interest_include_unstated=False
    )
    detail = recruiter_client.get(url("detail", org, campaign.pk)).content.decode()
    assert 'class="stat-value">2<' in detail
    assert "Data &amp; analytics" in detail


def test_campaign_form_refuses_a_role_family_of_another_organisation(
    recruiter_client, recruiter_user, org, other_org, in_org
):
    with scope(organization=other_org):
        role_family_service.role_family_create(organization=other_org, name="Legal")
    with scope(organization=org):
        form = BroadcastForm(
            _broadcast_post(org, recruiter_user, interest_role_families=["legal"]),
            organization=org,
            user=recruiter_user,
        )
        valid = form.is_valid()
    response = recruiter_client.post(
        url("create", org), _broadcast_post(org, recruiter_user, interest_role_families=["legal"])
    )
    assert valid is False
    assert form.errors["interest_role_families"] == [
        "Select a valid choice. legal is not one of the available choices."
    ]
    assert response.status_code == 200
    assert "legal is not one of the available choices." in response.content.decode()
    with in_org():
        assert not Campaign.objects.exists()


def test_campaign_form_too_many_locations_rerenders_with_the_error(
    recruiter_client, recruiter_user, org, in_org
):
    places = ", ".join(f"City {n}" for n in range(21))
    response = recruiter_client.post(
        url("create", org), _broadcast_post(org, recruiter_user, interest_locations=places)
    )
    assert response.status_code == 200
    assert "Name at most 20 locations." in response.content.decode()
    with in_org():
        assert not Campaign.objects.exists()


def _sequence_post(**fields):
    return {
        "name": "Data nurture",
        "topic": "jobs",
        "window_days": ["0", "1", "2", "3", "4"],
        "window_start": "09:00",
        "window_end": "17:00",
        **fields,
    }


def test_sequence_saves_the_interest_targeting_and_fixes_it_at_launch(
    recruiter_client, recruiter_user, org, in_org
):
    search = SavedSearchFactory(organization=org, owner=recruiter_user)
    recruiter_client.post(
        url("sequence_create", org),
        _sequence_post(
            saved_searches=[search.pk],
            interest_role_families=["data"],
            interest_locations="Leeds",
            interest_include_unstated="on",
        ),
    )
    with in_org():
        campaign = Campaign.objects.get()
    edit_page = recruiter_client.get(url("sequence_edit", org, campaign.pk)).content.decode()
    detail = recruiter_client.get(url("detail", org, campaign.pk)).content.decode()
    with scopes_disabled():
        Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.RUNNING)
    recruiter_client.post(
        url("sequence_edit", org, campaign.pk),
        _sequence_post(interest_role_families=["sales"], interest_locations="Paris"),
    )
    with in_org():  # the service holds it too, whoever calls it
        campaign.refresh_from_db()
        sequences.sequence_update(
            campaign=campaign,
            interest_role_families=["sales"],
            interest_locations=["Paris"],
            interest_include_unstated=False,
        )
    campaign.refresh_from_db()
    assert 'value="data" class="form-check-input" id="id_interest_role_families_1" checked' in (
        edit_page
    )
    assert 'value="Leeds"' in edit_page
    assert "Data &amp; analytics" in detail and "Also candidates who haven" in detail
    assert (campaign.interest_role_families, campaign.interest_locations) == (["data"], ["Leeds"])
    assert campaign.interest_include_unstated is True


def test_sequence_form_refuses_another_organisations_family_and_keeps_an_archived_one(
    recruiter_user, org, other_org
):
    with scope(organization=other_org):
        role_family_service.role_family_create(organization=other_org, name="Legal")
    families(org, "finance")
    campaign = make_broadcast(
        org, user=recruiter_user, kind=Campaign.Kind.SEQUENCE, interest_role_families=["finance"]
    )
    with scope(organization=org):
        foreign = SequenceForm(
            _sequence_post(interest_role_families=["legal"]), organization=org, user=recruiter_user
        )
        kept = SequenceForm(
            _sequence_post(interest_role_families=["finance"]),
            organization=org,
            user=recruiter_user,
            campaign=campaign,
        )
        new = SequenceForm(organization=org, user=recruiter_user)
        assert foreign.is_valid() is False
        assert kept.is_valid() is True, kept.errors
    assert "interest_role_families" in foreign.errors
    assert kept.cleaned_data["interest_role_families"] == ["finance"]
    assert "finance" not in dict(new.fields["interest_role_families"].choices)


def test_auto_join_enrolls_only_the_candidates_who_fit(org, recruiter_user, in_org):
    from pipelines.tests.factories import PoolFactory

    pool = PoolFactory(organization=org)
    campaign = make_broadcast(
        org,
        user=recruiter_user,
        tag="nobody-has-it",
        kind=Campaign.Kind.SEQUENCE,
        auto_join_pool=pool,
        interest_role_families=["design"],
        interest_include_unstated=False,
    )
    with scopes_disabled():
        campaign.steps.update(delay=timedelta(days=3))
        campaign_launch(campaign=campaign, user=recruiter_user)
    fits = person(org, interested_role_families=["design"])
    other = person(org, interested_role_families=["finance"])
    with in_org():
        joined = sequences.sequences_auto_join(pool_id=pool.pk, candidate_ids=[fits.pk, other.pk])
        enrolled = list(Enrollment.objects.values_list("candidate_id", flat=True))
    assert (joined, enrolled) == (1, [fits.pk])


# --- the candidate's profile ---


def test_profile_shows_the_candidates_email_preferences_in_one_query(recruiter_client, org, in_org):
    families(org, "finance")
    candidate = person(
        org,
        opted_out_topics=["newsletter"],
        frequency="monthly",
        paused_until=timezone.localdate() + timedelta(days=30),
        interested_role_families=["finance", "data"],
        interested_roles=["Developer advocate"],
        interested_locations=["Berlin", "Lisbon"],
        open_to_remote=True,
    )
    profile_url = reverse("candidates:detail", args=[org.slug, candidate.pk])
    recruiter_client.get(profile_url)
    with CaptureQueriesContext(connection) as queries:
        page = recruiter_client.get(profile_url).content.decode()
    panel_queries = [q for q in queries if '"campaigns_' in q["sql"]]
    assert profile_email_preferences(page) == {
        "Emails about": "Job opportunities, Events",
        "How often": "At most once a month",
        "Paused": f"Until {candidate_paused(candidate):%-d %b %Y}",
        "Role families": "Data &amp; analytics, Finance",
        "Other roles": "Developer advocate",
        "Locations": "Berlin, Lisbon",
        "Open to remote": "Yes",
    }
    # the messages with their campaigns, the consent, the preferences with their names
    assert len(panel_queries) == 3


def candidate_paused(candidate):
    with scopes_disabled():
        return CandidateEmailPreference.objects.get(candidate=candidate).paused_until


def test_profile_says_when_the_candidate_has_set_no_preferences(recruiter_client, org):
    candidate = person(org)
    page = recruiter_client.get(reverse("candidates:detail", args=[org.slug, candidate.pk]))
    body = page.content.decode()
    assert profile_email_preferences(body) == {}
    assert "Not set in the preference centre yet" in body


def test_profile_email_preferences_every_topic_and_nothing_chosen(recruiter_client, org):
    candidate = person(org, paused_until=timezone.localdate() - timedelta(days=1))
    page = recruiter_client.get(reverse("candidates:detail", args=[org.slug, candidate.pk]))
    assert profile_email_preferences(page.content.decode()) == {
        "Emails about": "Every topic",
        "How often": "Whenever there is something for me",
        "Paused": "No",
        "Role families": "None chosen",
        "Other roles": "None",
        "Locations": "None",
        "Open to remote": "No",
    }


@pytest.fixture(autouse=True)
def _topics_and_families(org):
    """The organisation's default topics and role families exist, as after the migration."""
    from campaigns.services.topics import topics_ensure_defaults

    with scope(organization=org):
        topics_ensure_defaults(organization=org)
        role_family_service.role_families_ensure_defaults(organization=org)


@pytest.mark.parametrize(
    ("name", "intro"),
    [
        ("create", "Narrow the audience to what candidates told the preference centre."),
        ("sequence_create", "Narrow who joins — on launch and from the pool — to what"),
    ],
)
def test_broadcast_and_sequence_forms_offer_the_interest_fields(recruiter_client, org, name, intro):
    body = recruiter_client.get(url(name, org)).content.decode()
    assert ">Interests</h2>" in body and intro in body
    for field in ("interest_role_families", "interest_locations", "interest_include_unstated"):
        assert f'name="{field}"' in body
    assert "Data &amp; analytics" in body  # a default role family to tick
