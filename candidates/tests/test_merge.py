import datetime
import re
import threading

import pytest
from django.contrib.messages import get_messages
from django.db import connection, transaction
from django.forms.models import model_to_dict
from django.urls import reverse
from django_scopes import scopes_disabled

from candidates.models import (
    Activity,
    Attachment,
    Candidate,
    DuplicateSuggestion,
    MergeRecord,
    Note,
)
from candidates.selectors import candidate_get_or_merged
from candidates.services.activities import (
    activity_record,
    candidate_last_contacted,
    candidates_mark_contacted,
)
from candidates.services.merge import MergeError, candidate_merge, candidate_merge_undo
from candidates.tests.factories import CandidateFactory, make_attachment, make_pdf
from crm.tests.locks import join_or_fail, waiting_for_a_lock

pytestmark = pytest.mark.django_db

IGNORED = {"updated_at", "search_vector"}


def _fields(candidate) -> dict:
    with scopes_disabled():
        candidate.refresh_from_db()
    values = model_to_dict(candidate)
    values.update(merged_into=candidate.merged_into_id, created_at=candidate.created_at)
    return {key: value for key, value in values.items() if key not in IGNORED}


def _rows(candidate) -> dict[str, set[int]]:
    with scopes_disabled():
        return {
            model.__name__: set(
                model.objects.filter(candidate=candidate).values_list("pk", flat=True)
            )
            for model in (Note, Activity, Attachment)
        }


@pytest.fixture
def pair(org, recruiter_user):
    primary = CandidateFactory(
        organization=org,
        first_name="Ada",
        last_name="Lovelace",
        email="ada@x.org",
        phone="",
        current_title="Engineer",
        current_company="Analytical Engines",
        skills=["python", "math"],
        tags=["alumni"],
        custom_fields={"notice": "1 month"},
        not_now_until=datetime.date(2030, 1, 2),
    )
    secondary = CandidateFactory(
        organization=org,
        first_name="Ada",
        last_name="King",
        email="ada.king@y.org",
        alternate_emails=["countess@z.org"],
        phone="+447700900123",
        current_title="Mathematician",
        current_company="Analytical Engines",
        skills=["math", "poetry"],
        tags=["event-2024"],
        custom_fields={"notice": "3 months", "visa": "yes"},
    )
    with scopes_disabled():
        for candidate, body in ((primary, "Primary note"), (secondary, "Secondary note")):
            note = Note.objects.create(
                organization=org, candidate=candidate, author=recruiter_user, body=body
            )
            activity_record(
                candidate=candidate, kind=Activity.Kind.NOTE_ADDED, note=note, summary=body
            )
        Candidate.objects.filter(pk=secondary.pk).update(resume_text="Countess", has_resume=True)
    make_attachment(
        secondary, content=make_pdf("Countess"), extracted_text="Countess", extraction_status="done"
    )
    return primary, secondary


def _merge(primary, secondary, choices=None, actor=None):
    with scopes_disabled():
        return candidate_merge(
            primary=primary, secondary=secondary, field_choices=choices or {}, actor=actor
        )


def test_candidate_merge_applies_choices_and_combines_the_rest(pair, recruiter_user):
    primary, secondary = pair

    _merge(
        primary,
        secondary,
        {"last_name": "secondary", "current_title": "primary", "custom:notice": "secondary"},
        recruiter_user,
    )

    with scopes_disabled():
        primary.refresh_from_db()
        secondary.refresh_from_db()
    assert (primary.first_name, primary.last_name, primary.current_title) == (
        "Ada",
        "King",
        "Engineer",
    )
    assert primary.phone == "+447700900123"  # the primary had none: the default takes it
    assert primary.email == "ada@x.org"
    assert primary.alternate_emails == ["ada.king@y.org", "countess@z.org"]
    assert primary.skills == ["python", "math", "poetry"]
    assert primary.tags == ["alumni", "event-2024"]
    assert primary.custom_fields == {"notice": "3 months", "visa": "yes"}
    assert primary.not_now_until is None  # an active profile keeps no "not now" date
    assert primary.resume_text == "Countess"
    assert secondary.merged_into_id == primary.pk


def test_candidate_merge_moves_notes_activities_and_files(pair, recruiter_user):
    primary, secondary = pair
    before_primary, before_secondary = _rows(primary), _rows(secondary)

    record = _merge(primary, secondary, actor=recruiter_user)

    after = _rows(primary)
    assert after["Note"] == before_primary["Note"] | before_secondary["Note"]
    assert after["Attachment"] == before_secondary["Attachment"]
    assert _rows(secondary) == {"Note": set(), "Activity": set(), "Attachment": set()}
    with scopes_disabled():
        merged = Activity.objects.get(candidate=primary, kind=Activity.Kind.MERGED)
    assert after["Activity"] == before_primary["Activity"] | before_secondary["Activity"] | {
        merged.pk
    }
    assert (merged.actor, merged.data["merge_id"]) == (recruiter_user, record.pk)
    assert set(record.moved["candidates.Note"]) == before_secondary["Note"]


def _suggest(org, one, two):
    with scopes_disabled():
        DuplicateSuggestion.objects.create(
            organization=org,
            candidate_a_id=min(one.pk, two.pk),
            candidate_b_id=max(one.pk, two.pk),
            reason="name_company",
        )


def test_candidate_merge_hides_the_secondary_and_closes_its_suggestions(org, pair):
    primary, secondary = pair
    _suggest(org, primary, secondary)

    _merge(primary, secondary)

    with scopes_disabled():
        assert list(Candidate.objects.filter(organization=org).live()) == [primary]
        assert DuplicateSuggestion.objects.get().state == DuplicateSuggestion.State.MERGED


def test_candidate_merge_can_take_the_secondary_email(pair):
    primary, secondary = pair

    _merge(primary, secondary, {"email": "secondary"})

    with scopes_disabled():
        primary.refresh_from_db()
    assert primary.email == "ada.king@y.org"
    assert primary.alternate_emails == ["ada@x.org", "countess@z.org"]


def test_candidate_merge_refuses_an_already_merged_profile(org, pair):
    primary, secondary = pair
    third = CandidateFactory(organization=org)
    _merge(primary, secondary)

    with pytest.raises(MergeError):
        _merge(third, secondary)


def test_candidate_merge_undo_restores_both_profiles_exactly(org, pair, recruiter_user):
    primary, secondary = pair
    _suggest(org, primary, secondary)
    fields_before = (_fields(primary), _fields(secondary))
    rows_before = (_rows(primary), _rows(secondary))
    record = _merge(
        primary, secondary, {"email": "secondary", "last_name": "secondary"}, recruiter_user
    )

    with scopes_disabled():
        candidate_merge_undo(record=record, actor=recruiter_user)

    assert (_fields(primary), _fields(secondary)) == fields_before
    with scopes_disabled():
        merged = Activity.objects.get(kind=Activity.Kind.MERGED)
        unmerged = dict(
            Activity.objects.filter(kind=Activity.Kind.UNMERGED).values_list("candidate_id", "pk")
        )
        record.refresh_from_db()
        suggestion = DuplicateSuggestion.objects.get()
    assert _rows(primary) == {
        **rows_before[0],
        "Activity": rows_before[0]["Activity"] | {merged.pk, unmerged[primary.pk]},
    }
    assert _rows(secondary) == {
        **rows_before[1],
        "Activity": rows_before[1]["Activity"] | {unmerged[secondary.pk]},
    }
    assert (record.undone_by, record.undone_at is not None) == (recruiter_user, True)
    assert suggestion.state == DuplicateSuggestion.State.OPEN


@pytest.mark.parametrize(
    "primary_contacted", [None, datetime.datetime(2026, 3, 1, tzinfo=datetime.UTC)]
)
def test_candidate_merge_keeps_the_later_last_contacted_and_undo_puts_it_back(
    pair, primary_contacted
):
    primary, secondary = pair
    later = datetime.datetime(2026, 5, 1, tzinfo=datetime.UTC)
    with scopes_disabled():
        if primary_contacted:
            candidates_mark_contacted(candidate_ids=[primary.pk], at=primary_contacted)
        candidates_mark_contacted(candidate_ids=[secondary.pk], at=later)
    record = _merge(primary, secondary)
    with scopes_disabled():
        merged = candidate_last_contacted(primary)
        candidate_merge_undo(record=record, actor=None)
        after_undo = (candidate_last_contacted(primary), candidate_last_contacted(secondary))
    assert merged == later
    assert after_undo == (primary_contacted, later)


def test_candidate_merge_never_moves_last_contacted_back(pair):
    primary, secondary = pair
    recent = datetime.datetime(2026, 5, 1, tzinfo=datetime.UTC)
    with scopes_disabled():
        candidates_mark_contacted(candidate_ids=[primary.pk], at=recent)
        candidates_mark_contacted(
            candidate_ids=[secondary.pk], at=recent - datetime.timedelta(days=30)
        )
    _merge(primary, secondary)
    with scopes_disabled():
        assert candidate_last_contacted(primary) == recent


def test_candidate_merge_undo_is_refused_while_a_later_merge_involves_the_profiles(org, pair):
    primary, secondary = pair
    third = CandidateFactory(organization=org)
    first = _merge(primary, secondary)
    second = _merge(third, primary)

    with scopes_disabled(), pytest.raises(MergeError, match="later merge"):
        candidate_merge_undo(record=first, actor=None)

    with scopes_disabled():
        candidate_merge_undo(record=second, actor=None)
        candidate_merge_undo(record=first, actor=None)
        assert sorted(Candidate.objects.live().values_list("pk", flat=True)) == sorted(
            [primary.pk, secondary.pk, third.pk]
        )


def test_candidate_merge_undo_twice_is_refused(pair):
    record = _merge(*pair)
    with scopes_disabled():
        candidate_merge_undo(record=record, actor=None)

        with pytest.raises(MergeError, match="already been undone"):
            candidate_merge_undo(record=record, actor=None)


@pytest.mark.parametrize(
    ("at_merge", "after_merge", "after_undo"),
    [
        # What restricts contact and was set after the merge stays.
        (("active", None), ("do_not_contact", None), ("do_not_contact", None)),
        (("not_now", "2030-01-01"), ("do_not_contact", None), ("do_not_contact", None)),
        (("active", None), ("not_now", "2032-01-01"), ("not_now", "2032-01-01")),
        (("not_now", "2030-01-01"), ("not_now", "2032-01-01"), ("not_now", "2032-01-01")),
        # What the primary had at the merge comes back if it is stricter…
        (("not_now", "2032-01-01"), ("not_now", "2030-01-01"), ("not_now", "2032-01-01")),
        # A "not now" without a date (old data) never ends: it outlasts any date.
        (("not_now", None), ("not_now", "2032-01-01"), ("not_now", None)),
        (("not_now", "2030-01-01"), ("not_now", None), ("not_now", None)),
        (("do_not_contact", None), ("active", None), ("do_not_contact", None)),
        # …and as before when neither restricts contact.
        (("hired", None), ("active", None), ("hired", None)),
    ],
)
def test_candidate_merge_undo_never_loosens_the_status(org, at_merge, after_merge, after_undo):
    def status(value):
        name, until = value
        return {
            "status": name,
            "not_now_until": datetime.date.fromisoformat(until) if until else None,
        }

    primary = CandidateFactory(organization=org, **status(at_merge))
    secondary = CandidateFactory(organization=org)
    record = _merge(primary, secondary)
    with scopes_disabled():
        Candidate.objects.filter(pk=primary.pk).update(**status(after_merge))

        candidate_merge_undo(record=record, actor=None)

        primary.refresh_from_db()
    assert {"status": primary.status, "not_now_until": primary.not_now_until} == status(after_undo)


@pytest.mark.parametrize(
    ("after_merge", "kept"),
    [
        ({"status": "do_not_contact"}, "status “Do not contact”"),
        (
            {"status": "not_now", "not_now_until": datetime.date(2032, 1, 1)},
            "status “Not now” until 1 Jan 2032",
        ),
        ({"status": "hired"}, "status “Hired”"),
    ],
)
def test_candidate_merge_undo_says_on_the_timeline_that_it_kept_the_stricter_status(
    org, pair, recruiter_user, after_merge, kept
):
    primary, secondary = pair
    record = _merge(primary, secondary)
    with scopes_disabled():
        Candidate.objects.filter(pk=primary.pk).update(**after_merge)

        candidate_merge_undo(record=record, actor=recruiter_user)

        entries = dict(
            Activity.objects.filter(kind=Activity.Kind.UNMERGED).values_list(
                "candidate_id", "summary"
            )
        )
        data = Activity.objects.get(candidate=primary, kind=Activity.Kind.UNMERGED).data
    assert entries == {
        primary.pk: f"Merge with Ada King (ada.king@y.org) undone; kept the stricter {kept}",
        secondary.pk: "Merge with Ada Lovelace (ada@x.org) undone",
    }
    assert data["kept"] == [kept]


@pytest.mark.django_db(transaction=True)
def test_candidate_merge_undo_waits_for_a_merge_under_way_and_is_then_refused(org):
    """The undo of merge #1 (primary <- secondary) comes while merge #2 (primary <- third)
    holds the primary: it waits, then sees merge #2 and is refused — before, it had checked
    for later merges before waiting and then put the primary back over merge #2's result."""
    primary = CandidateFactory(organization=org, phone="")
    secondary = CandidateFactory(organization=org)
    third = CandidateFactory(organization=org, tags=["from-third"], phone="+442000000003")
    first = _merge(primary, secondary)
    outcome = []

    def undo():
        try:
            with scopes_disabled():
                candidate_merge_undo(record=first, actor=None)
            outcome.append("undone")
        except MergeError as error:
            outcome.append(str(error))
        finally:
            connection.close()

    undoer = threading.Thread(target=undo, daemon=True)
    with scopes_disabled(), transaction.atomic():
        # Merge #2 is under way: it holds the primary's row until it commits.
        list(Candidate.objects.select_for_update().filter(pk=primary.pk))
        undoer.start()
        waited = waiting_for_a_lock()
        candidate_merge(primary=primary, secondary=third, field_choices={}, actor=None)
    join_or_fail(undoer, timeout=30, failure="the undo did not finish")

    assert waited
    assert outcome == [
        "A later merge involves one of these profiles. Undo that merge first, then this one."
    ]
    with scopes_disabled():
        primary.refresh_from_db()
        first.refresh_from_db()
        secondary.refresh_from_db()
    assert (primary.tags, primary.phone) == (["from-third"], "+442000000003")
    assert (first.undone_at, secondary.merged_into_id) == (None, primary.pk)


def test_candidate_get_or_merged_follows_merges_to_the_live_profile(org, pair):
    primary, secondary = pair
    third = CandidateFactory(organization=org)
    _merge(primary, secondary)
    _merge(third, primary)

    with scopes_disabled():
        assert candidate_get_or_merged(organization=org, candidate_id=secondary.pk) == third
        assert candidate_get_or_merged(organization=org, candidate_id=third.pk) == third


# --- the merge screen --------------------------------------------------------------------


def _merge_url(org, primary, other=None):
    url = reverse("candidates:merge", args=[org.slug, primary.pk])
    return f"{url}?other={other.pk}" if other else url


def test_merge_view_shows_the_differing_fields(recruiter_client, org, pair):
    primary, secondary = pair

    response = recruiter_client.get(_merge_url(org, primary, secondary))

    body = response.content.decode()
    assert response.status_code == 200
    assert "Last name" in body and "Lovelace" in body and "King" in body
    assert "Current title" in body and "Mathematician" in body
    assert 'name="choice_first_name"' not in body  # both are "Ada"
    assert 'name="choice_custom__visa"' in body
    assert "poetry" in body  # combined skills
    assert "1 note" in body


def test_merge_view_post_merges_and_redirects_to_the_primary(
    recruiter_client, recruiter_user, org, pair
):
    primary, secondary = pair

    response = recruiter_client.post(
        _merge_url(org, primary),
        {"other": secondary.pk, "choice_last_name": "secondary", "choice_current_title": "primary"},
    )

    assert response["Location"] == reverse("candidates:detail", args=[org.slug, primary.pk])
    with scopes_disabled():
        primary.refresh_from_db()
        record = MergeRecord.objects.get()
    assert (primary.last_name, primary.current_title) == ("King", "Engineer")
    assert (record.secondary_id, record.merged_by) == (secondary.pk, recruiter_user)


def test_merge_view_post_says_where_the_merge_can_be_undone(recruiter_client, org, pair):
    primary, secondary = pair

    response = recruiter_client.post(_merge_url(org, primary), {"other": secondary.pk})

    assert [str(message) for message in get_messages(response.wsgi_request)] == [
        "Ada King was merged into this profile. You can undo it under “Merged into this "
        "profile” in the Possible duplicates card."
    ]


def test_merge_view_confirmation_names_both_profiles(recruiter_client, org, pair):
    primary, secondary = pair

    response = recruiter_client.get(_merge_url(org, primary, secondary))

    assert 'data-confirm="Merge Ada King into Ada Lovelace?"' in response.content.decode()


def test_merge_view_confirmation_of_namesakes_tells_them_apart_by_date(recruiter_client, org, pair):
    primary, secondary = pair
    with scopes_disabled():
        Candidate.objects.filter(pk=primary.pk).update(
            last_name="King", created_at=datetime.datetime(2025, 3, 1, 12, tzinfo=datetime.UTC)
        )
        Candidate.objects.filter(pk=secondary.pk).update(
            created_at=datetime.datetime(2026, 9, 25, 12, tzinfo=datetime.UTC)
        )

    response = recruiter_client.get(_merge_url(org, primary, secondary))

    assert (
        'data-confirm="Merge the profile of Ada King added 25 Sep 2026 into the one added '
        '1 Mar 2025?"'
    ) in response.content.decode()


def test_merge_view_other_from_another_organisation_is_not_found(
    recruiter_client, org, other_org, pair
):
    primary, _ = pair
    foreign = CandidateFactory(organization=other_org)

    assert recruiter_client.get(_merge_url(org, primary, foreign)).status_code == 404
    response = recruiter_client.post(_merge_url(org, primary), {"other": foreign.pk})
    assert response.status_code == 404
    with scopes_disabled():
        assert not MergeRecord.objects.exists()


def test_merge_view_with_itself_or_an_unreadable_choice_is_not_found(recruiter_client, org, pair):
    primary, _ = pair

    assert recruiter_client.get(_merge_url(org, primary, primary)).status_code == 404
    assert recruiter_client.get(_merge_url(org, primary) + "?other=abc").status_code == 404
    assert recruiter_client.post(_merge_url(org, primary), {}).status_code == 404


def test_merge_view_without_a_choice_finds_the_other_profile(
    recruiter_client, org, pair, other_org
):
    primary, secondary = pair
    CandidateFactory(organization=other_org, first_name=secondary.first_name, email="x@y.example")

    empty = recruiter_client.get(_merge_url(org, primary))
    found = recruiter_client.get(_merge_url(org, primary), {"find": secondary.email})
    nothing = recruiter_client.get(_merge_url(org, primary), {"find": "zzzqqq"})

    assert empty.status_code == 200
    assert empty.context["found"] == []
    assert found.context["found"] == [secondary]
    assert f"?other={secondary.pk}" in found.content.decode()
    assert "No other profile found" in nothing.content.decode()


def test_merge_view_search_never_offers_the_profile_itself(recruiter_client, org, pair):
    primary, _ = pair

    response = recruiter_client.get(_merge_url(org, primary), {"find": primary.email})

    assert primary not in response.context["found"]


def test_merge_view_viewer_is_forbidden(viewer_client, org, pair):
    primary, secondary = pair

    assert viewer_client.get(_merge_url(org, primary, secondary)).status_code == 403
    assert viewer_client.post(_merge_url(org, primary), {"other": secondary.pk}).status_code == 403


def test_merge_view_other_org_is_not_found(outsider_client, other_org, pair):
    primary, secondary = pair
    url = reverse("candidates:merge", args=[other_org.slug, primary.pk])

    assert outsider_client.get(f"{url}?other={secondary.pk}").status_code == 404


def test_merge_view_anonymous_goes_to_login(client, org, pair):
    response = client.get(_merge_url(org, *pair))

    assert "/accounts/login/" in response["Location"]


def test_merge_view_timeline_and_profile_show_the_merge(recruiter_client, org, pair):
    primary, secondary = pair
    recruiter_client.post(_merge_url(org, primary), {"other": secondary.pk})

    response = recruiter_client.get(reverse("candidates:detail", args=[org.slug, primary.pk]))

    body = response.content.decode()
    assert "Merged with Ada King (ada.king@y.org)" in body
    assert "Merged into this profile" in body
    assert "Secondary note" in body


def _cancel_href(response) -> str:
    return re.search(
        r'<a class="btn btn-outline-secondary" href="([^"]*)">Cancel</a>', response.content.decode()
    )[1]


def test_merge_view_cancel_goes_back_where_the_merge_was_opened(recruiter_client, org, pair):
    primary, secondary = pair
    profile = reverse("candidates:detail", args=[org.slug, primary.pk])
    duplicates = reverse("candidates:duplicates", args=[org.slug])
    url = reverse("candidates:merge", args=[org.slug, primary.pk])

    def opened(**next_url):
        return recruiter_client.get(url, {"other": secondary.pk, **next_url})

    from_profile = opened(next=profile)
    from_filtered_list = opened(next=f"{duplicates}?reason=email")
    without = opened()
    offsite = opened(next="https://evil.example/")

    assert _cancel_href(from_profile) == profile
    assert _cancel_href(from_filtered_list) == f"{duplicates}?reason=email"
    assert _cancel_href(without) == duplicates
    assert _cancel_href(offsite) == duplicates
    body = from_profile.content.decode()
    assert f'<input type="hidden" name="next" value="{profile}">' in body
    # Keeping the other profile instead still comes back to the same place.
    assert f"?other={primary.pk}&amp;next=/o/{org.slug}/candidates/{primary.pk}/" in body


def test_merge_view_keeps_the_way_back_when_it_shows_the_form_again(
    recruiter_client, org, pair, monkeypatch
):
    primary, secondary = pair
    profile = reverse("candidates:detail", args=[org.slug, primary.pk])

    def refuse(**kwargs):
        raise MergeError("This profile was merged meanwhile.")

    monkeypatch.setattr("candidates.views.duplicates.candidate_merge", refuse)
    response = recruiter_client.post(
        _merge_url(org, primary), {"other": secondary.pk, "next": profile}
    )

    assert response.status_code == 200
    assert _cancel_href(response) == profile


def test_merge_links_say_where_the_merge_was_opened(recruiter_client, org, pair):
    primary, secondary = pair
    with scopes_disabled():
        DuplicateSuggestion.objects.create(
            organization=org,
            candidate_a=primary,
            candidate_b=secondary,
            reason=DuplicateSuggestion.Reason.NAME_COMPANY,
            score=0.8,
        )
    profile = reverse("candidates:detail", args=[org.slug, primary.pk])
    duplicates = reverse("candidates:duplicates", args=[org.slug])

    on_profile = recruiter_client.get(profile).content.decode()
    on_list = recruiter_client.get(duplicates, {"reason": "name_company"}).content.decode()
    on_pick = recruiter_client.get(_merge_url(org, primary), {"find": secondary.email})

    assert f"?other={secondary.pk}&amp;next={profile}" in on_profile
    assert f"&amp;next={duplicates}%3Freason%3Dname_company" in on_list
    assert f"?other={secondary.pk}&amp;next={profile}" in on_pick.content.decode()


# --- undo -------------------------------------------------------------------------------


def test_merge_undo_view_restores_the_secondary(recruiter_client, org, pair):
    primary, secondary = pair
    record = _merge(primary, secondary)

    response = recruiter_client.post(reverse("candidates:merge_undo", args=[org.slug, record.pk]))

    assert response["Location"] == reverse("candidates:detail", args=[org.slug, primary.pk])
    with scopes_disabled():
        secondary.refresh_from_db()
    assert secondary.merged_into_id is None


def test_merge_undo_view_explains_a_refusal(recruiter_client, org, pair):
    primary, secondary = pair
    first = _merge(primary, secondary)
    _merge(CandidateFactory(organization=org), primary)

    response = recruiter_client.post(reverse("candidates:merge_undo", args=[org.slug, first.pk]))

    messages = [str(message) for message in get_messages(response.wsgi_request)]
    assert any("later merge" in message for message in messages)
    with scopes_disabled():
        first.refresh_from_db()
    assert first.undone_at is None


def test_merge_undo_view_viewer_is_forbidden(viewer_client, org, pair):
    record = _merge(*pair)

    response = viewer_client.post(reverse("candidates:merge_undo", args=[org.slug, record.pk]))

    assert response.status_code == 403


def test_merge_undo_view_other_org_is_not_found(outsider_client, other_org, pair):
    record = _merge(*pair)

    response = outsider_client.post(
        reverse("candidates:merge_undo", args=[other_org.slug, record.pk])
    )

    assert response.status_code == 404


def test_merge_undo_view_get_is_not_allowed(recruiter_client, org, pair):
    record = _merge(*pair)

    response = recruiter_client.get(reverse("candidates:merge_undo", args=[org.slug, record.pk]))

    assert response.status_code == 405


def test_profile_of_a_merged_candidate_redirects_to_the_survivor(recruiter_client, org):
    from django_scopes import scopes_disabled

    primary = CandidateFactory(organization=org, first_name="Kept")
    secondary = CandidateFactory(organization=org, first_name="Gone")
    with scopes_disabled():
        type(secondary).objects.filter(pk=secondary.pk).update(merged_into=primary)

    response = recruiter_client.get(reverse("candidates:detail", args=[org.slug, secondary.pk]))

    assert response.status_code == 302
    assert response.url == reverse("candidates:detail", args=[org.slug, primary.pk])
    follow = recruiter_client.get(response.url)
    assert "merged into this one" in follow.content.decode()


# --- deleting a merged profile -----------------------------------------------------------


def _in_org(org) -> dict[str, set[int]]:
    with scopes_disabled():
        return {
            "live": set(
                Candidate.objects.filter(organization=org).live().values_list("pk", flat=True)
            ),
            "all": set(Candidate.objects.filter(organization=org).values_list("pk", flat=True)),
            "merges": set(
                MergeRecord.objects.filter(organization=org).values_list("pk", flat=True)
            ),
        }


def test_deleting_a_merge_survivor_in_bulk_deletes_the_profiles_merged_into_it(
    org, pair, admin_user
):
    from candidates.services.bulk import bulk_start

    primary, secondary = pair
    earlier = CandidateFactory(organization=org, first_name="Countess")
    _merge(secondary, earlier)  # a chain: earlier → secondary → primary
    _merge(primary, secondary)
    bystander = CandidateFactory(organization=org)

    with scopes_disabled():
        outcome = bulk_start(
            organization=org,
            actor=admin_user,
            action="delete",
            args={},
            selection={"ids": [primary.pk]},
        )

    assert outcome.changed == 1  # the selection; the merged-away profiles go with it
    assert _in_org(org) == {"live": {bystander.pk}, "all": {bystander.pk}, "merges": set()}


def test_deleting_a_merge_survivor_in_the_admin_deletes_the_profiles_merged_into_it(
    org, pair, client
):
    from tests.factories import UserFactory

    primary, secondary = pair
    _merge(primary, secondary)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    response = client.post(
        reverse("admin:candidates_candidate_delete", args=[primary.pk]), {"post": "yes"}
    )

    assert response.status_code == 302
    assert _in_org(org) == {"live": set(), "all": set(), "merges": set()}


def test_deleting_a_merge_survivor_never_makes_its_merged_profiles_live_again(org, pair):
    primary, secondary = pair
    _merge(primary, secondary)  # the primary keeps its own email; the secondary's is free
    newcomer = CandidateFactory(organization=org, email=secondary.email)

    with scopes_disabled():
        Candidate.objects.filter(pk=primary.pk).delete()

    assert _in_org(org) == {"live": {newcomer.pk}, "all": {newcomer.pk}, "merges": set()}


# --- the stricter status by default ---------------------------------------------------------


@pytest.mark.parametrize(
    ("primary_status", "secondary_status", "kept"),
    [
        ("active", "do_not_contact", "do_not_contact"),
        ("not_now", "do_not_contact", "do_not_contact"),
        ("do_not_contact", "active", "do_not_contact"),
        ("hired", "do_not_contact", "do_not_contact"),
        ("active", "not_now", "not_now"),
        ("not_now", "active", "not_now"),
        ("hired", "active", "hired"),
        ("active", "hired", "hired"),
        ("not_now", "hired", "hired"),
        ("hired", "not_now", "hired"),
    ],
)
def test_candidate_merge_keeps_the_stricter_status_by_default(
    org, primary_status, secondary_status, kept
):
    primary = CandidateFactory(organization=org, status=primary_status)
    secondary = CandidateFactory(
        organization=org,
        status=secondary_status,
        not_now_until=datetime.date(2031, 5, 1) if secondary_status == "not_now" else None,
    )

    _merge(primary, secondary)

    with scopes_disabled():
        primary.refresh_from_db()
    assert primary.status == kept
    if kept == "not_now" and secondary_status == "not_now":
        assert primary.not_now_until == datetime.date(2031, 5, 1)


def test_candidate_merge_drops_a_not_now_date_when_the_status_kept_is_another(org):
    # Keeping the other profile's "Active" over "Not now until …" by an explicit choice for
    # the status alone (the service's callers may pass one): no date stays behind the status.
    primary = CandidateFactory(
        organization=org, status="not_now", not_now_until=datetime.date(2031, 5, 1)
    )
    secondary = CandidateFactory(organization=org, status="active", not_now_until=None)

    _merge(primary, secondary, choices={"status": "secondary", "not_now_until": "primary"})

    with scopes_disabled():
        primary.refresh_from_db()
    assert (primary.status, primary.not_now_until) == ("active", None)


def test_candidate_merge_of_two_not_now_profiles_keeps_the_later_date(org):
    primary = CandidateFactory(
        organization=org, status="not_now", not_now_until=datetime.date(2030, 1, 1)
    )
    secondary = CandidateFactory(
        organization=org, status="not_now", not_now_until=datetime.date(2031, 1, 1)
    )

    _merge(primary, secondary)

    with scopes_disabled():
        primary.refresh_from_db()
    assert primary.not_now_until == datetime.date(2031, 1, 1)


@pytest.mark.parametrize(
    ("primary_until", "secondary_until"),
    [(datetime.date(2031, 1, 1), None), (None, datetime.date(2031, 1, 1))],
)
def test_a_not_now_without_a_date_outlasts_any_date_in_a_merge_and_its_undo(
    org, primary_until, secondary_until
):
    # Old data can hold a "not now" without a date: the daily run never brings it back, so
    # it lasts longer than any date — by default in the merge, and when undone.
    primary = CandidateFactory(organization=org, status="not_now", not_now_until=primary_until)
    secondary = CandidateFactory(organization=org, status="not_now", not_now_until=secondary_until)

    record = _merge(primary, secondary)
    with scopes_disabled():
        primary.refresh_from_db()
        merged = (primary.status, primary.not_now_until)
        candidate_merge_undo(record=record, actor=None)
        primary.refresh_from_db()

    assert merged == ("not_now", None)
    assert (primary.status, primary.not_now_until) == ("not_now", None)


def test_merge_view_offers_the_secondarys_not_now_without_a_date(recruiter_client, org):
    primary = CandidateFactory(
        organization=org, status="not_now", not_now_until=datetime.date(2031, 1, 1)
    )
    secondary = CandidateFactory(organization=org, status="not_now", not_now_until=None)

    response = recruiter_client.get(_merge_url(org, primary, secondary))

    assert response.context["form"]["choice_not_now_until"].value() == "secondary"


def _choices(response, form_name) -> list[tuple[str, str]]:
    return list(response.context["form"].fields[form_name].choices)


@pytest.mark.parametrize("kept", ["primary", "secondary"])
def test_merge_view_writes_a_not_now_without_a_date_as_having_no_end_date(
    recruiter_client, org, kept
):
    primary = CandidateFactory(
        organization=org, status="not_now", not_now_until=datetime.date(2031, 1, 1)
    )
    secondary = CandidateFactory(organization=org, status="not_now", not_now_until=None)

    page = recruiter_client.get(_merge_url(org, primary, secondary))
    recruiter_client.post(
        _merge_url(org, primary), {"other": secondary.pk, "choice_not_now_until": kept}
    )

    with scopes_disabled():
        primary.refresh_from_db()
    assert _choices(page, "choice_not_now_until") == [
        ("primary", "1 Jan 2031"),
        ("secondary", "No end date"),
    ]
    assert "No end date" in page.content.decode()
    assert (primary.status, primary.not_now_until) == (
        "not_now",
        {"primary": datetime.date(2031, 1, 1), "secondary": None}[kept],
    )


def test_merge_view_writes_the_not_now_status_with_its_date_or_its_lack_of_one(
    recruiter_client, org
):
    active = CandidateFactory(organization=org, status="active")
    undated = CandidateFactory(organization=org, status="not_now", not_now_until=None)
    dated = CandidateFactory(
        organization=org, status="not_now", not_now_until=datetime.date(2031, 5, 1)
    )

    to_undated = recruiter_client.get(_merge_url(org, active, undated))
    from_dated = recruiter_client.get(_merge_url(org, dated, active))

    assert _choices(to_undated, "choice_status") == [
        ("primary", "Active"),
        ("secondary", "Not now — no end date"),
    ]
    assert _choices(from_dated, "choice_status") == [
        ("primary", "Not now until 1 May 2031"),
        ("secondary", "Active"),
    ]


@pytest.mark.parametrize(
    ("kept", "expected"),
    [
        ("primary", ("do_not_contact", None)),
        ("secondary", ("not_now", datetime.date(2031, 5, 1))),
    ],
)
def test_merge_view_keeps_the_not_now_date_with_the_status_chosen(
    recruiter_client, org, kept, expected
):
    """One row, "Do not contact" or "Not now until 1 May 2031": the date goes with the
    status, so keeping "Do not contact" does not keep the other profile's date with it."""
    primary = CandidateFactory(organization=org, status="do_not_contact")
    secondary = CandidateFactory(
        organization=org, status="not_now", not_now_until=datetime.date(2031, 5, 1)
    )

    page = recruiter_client.get(_merge_url(org, primary, secondary))
    recruiter_client.post(_merge_url(org, primary), {"other": secondary.pk, "choice_status": kept})

    with scopes_disabled():
        primary.refresh_from_db()
        secondary.refresh_from_db()
    assert _choices(page, "choice_status") == [
        ("primary", "Do not contact"),
        ("secondary", "Not now until 1 May 2031"),
    ]
    assert "choice_not_now_until" not in page.context["form"].fields
    assert secondary.merged_into_id == primary.pk
    assert (primary.status, primary.not_now_until) == expected


def test_merge_view_preselects_do_not_contact_of_the_secondary(recruiter_client, org):
    primary = CandidateFactory(organization=org, status="active")
    secondary = CandidateFactory(organization=org, status="do_not_contact")

    response = recruiter_client.get(_merge_url(org, primary, secondary))

    assert response.context["form"]["choice_status"].value() == "secondary"


def test_merge_view_can_still_keep_the_primarys_status(recruiter_client, org):
    primary = CandidateFactory(organization=org, status="active")
    secondary = CandidateFactory(organization=org, status="do_not_contact")

    recruiter_client.post(
        _merge_url(org, primary), {"other": secondary.pk, "choice_status": "primary"}
    )

    with scopes_disabled():
        primary.refresh_from_db()
        secondary.refresh_from_db()
    assert secondary.merged_into_id == primary.pk
    assert primary.status == "active"


def _timeline_entries(client, org, candidate) -> dict[str, str]:
    """{an entry's summary: its heading's text} on the profile page."""
    body = client.get(reverse("candidates:detail", args=[org.slug, candidate.pk])).content.decode()
    entries = {}
    for item in re.findall(r'<li class="timeline-item.*?</li>', body, flags=re.S):
        summary = re.search(r'text-break">([^<]*)</div>', item)
        if summary:
            entries[summary[1]] = re.sub(r"<[^>]+>|\s+", " ", item.split("<time")[0]).strip()
    return entries


def test_merged_history_says_which_profile_it_came_from_until_the_merge_is_undone(
    recruiter_client, org, pair, recruiter_user
):
    """After a merge the kept profile shows two "Profile created" entries: the one that came
    with the merged-away profile says so."""
    primary, secondary = pair
    with scopes_disabled():
        activity_record(candidate=primary, kind="created", summary="Added by Riya")
        activity_record(candidate=secondary, kind="created", summary="Imported from people.csv")
    record = _merge(primary, secondary, actor=recruiter_user)

    entries = _timeline_entries(recruiter_client, org, primary)
    assert "merged from Ada King" in entries["Imported from people.csv"]
    assert "merged from" not in entries["Added by Riya"]

    with scopes_disabled():
        candidate_merge_undo(record=record, actor=recruiter_user)
    entries = _timeline_entries(recruiter_client, org, primary)
    assert "Imported from people.csv" not in entries
    assert "merged from" not in entries["Added by Riya"]
