import datetime
import re

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_scopes import scopes_disabled

from candidates.forms import CandidateForm
from candidates.models import Activity, Candidate, CandidateContact, Note
from candidates.selectors import candidate_timeline
from candidates.services import profiles
from candidates.services.activities import activity_record, candidate_last_contacted
from candidates.tests.factories import CandidateFactory, NoteFactory
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def url(name, org, *args):
    return reverse(f"candidates:{name}", args=[org.slug, *args])


def _form_data(**overrides):
    data = {
        "first_name": "Amara",
        "last_name": "Okafor",
        "email": "Amara.Okafor@Example.com",
        "phone": "07911 123456",
        "skills": "Python,  Machine   Learning, python",
        "tags": "Silver Medallist",
        "source": "referral",
        "status": "active",
        "linkedin_url": "linkedin.com/in/amara",
    }
    data.update(overrides)
    return data


def _activities(candidate):
    with scopes_disabled():
        return list(
            Activity.objects.filter(candidate=candidate)
            .order_by("occurred_at", "id")
            .values_list("kind", flat=True)
        )


# --- services: normalisation -----------------------------------------------------------------


def test_candidate_create_normalises_email_phone_skills_and_urls(org, recruiter_user, in_org):
    with in_org():
        candidate = profiles.candidate_create(
            organization=org,
            actor=recruiter_user,
            first_name="  Amara ",
            email=" Amara.Okafor@Example.COM ",
            phone="07911 123456",
            skills="Python,  Machine   Learning, python",
            tags=["Remote", " remote "],
            linkedin_url="linkedin.com/in/amara",
        )
    assert candidate.first_name == "Amara"
    assert candidate.email == "amara.okafor@example.com"
    assert candidate.phone == "+447911123456"
    assert candidate.skills == ["python", "machine learning"]
    assert candidate.tags == ["remote"]
    assert candidate.linkedin_url == "https://linkedin.com/in/amara"
    assert _activities(candidate) == ["created"]


def test_candidate_create_phone_without_country_code_needs_one_when_region_unknown(
    org, recruiter_user, in_org
):
    org.time_zone = "UTC"
    org.save()
    with in_org(), pytest.raises(ValidationError) as error:
        profiles.candidate_create(
            organization=org, actor=recruiter_user, first_name="Li", phone="07911 123456"
        )
    assert "phone" in error.value.message_dict


def test_candidate_create_phone_with_country_code_works_anywhere(org, recruiter_user, in_org):
    org.time_zone = "UTC"
    org.save()
    with in_org():
        candidate = profiles.candidate_create(
            organization=org, actor=recruiter_user, first_name="Li", phone="+49 30 901820"
        )
    assert candidate.phone == "+4930901820"


def test_candidate_create_rejects_invalid_url(org, recruiter_user, in_org):
    with in_org(), pytest.raises(ValidationError) as error:
        profiles.candidate_create(
            organization=org, actor=recruiter_user, first_name="Li", github_url="not a url"
        )
    assert list(error.value.message_dict) == ["github_url"]


def test_candidate_create_duplicate_email_differing_in_case_is_a_validation_error(
    org, recruiter_user, in_org
):
    CandidateFactory(organization=org, email="sam@example.com")
    with in_org(), pytest.raises(ValidationError) as error:
        profiles.candidate_create(
            organization=org, actor=recruiter_user, first_name="Sam", email="SAM@Example.com"
        )
    assert error.value.message_dict == {"email": [profiles.DUPLICATE_EMAIL_MESSAGE]}


def test_candidate_create_same_email_in_another_org_is_fine(org, other_org, recruiter_user, in_org):
    CandidateFactory(organization=other_org, email="sam@example.com")
    with in_org():
        candidate = profiles.candidate_create(
            organization=org, actor=recruiter_user, first_name="Sam", email="sam@example.com"
        )
    assert candidate.email == "sam@example.com"


def test_candidate_create_owner_must_be_recruiter_or_admin(
    org, viewer_user, recruiter_user, in_org
):
    with in_org(), pytest.raises(ValidationError) as error:
        profiles.candidate_create(
            organization=org, actor=recruiter_user, first_name="Li", owner=viewer_user
        )
    assert list(error.value.message_dict) == ["owner"]


def test_candidate_update_records_edited_status_and_owner_changes(
    org, recruiter_user, admin_user, in_org
):
    candidate = CandidateFactory(organization=org, current_title="Engineer")
    with in_org():
        profiles.candidate_update(
            candidate=candidate,
            actor=recruiter_user,
            current_title="Staff Engineer",
            city="Lagos",
            status="not_now",
            not_now_until=timezone.localdate() + datetime.timedelta(days=90),
            owner=admin_user,
        )
        activities = {a.kind: a for a in Activity.objects.filter(candidate=candidate)}
    assert set(activities) == {"edited", "status_changed", "owner_changed"}
    assert activities["edited"].data == {"fields": ["current_title", "city"]}
    assert activities["edited"].summary == "Changed title, city"
    assert activities["status_changed"].data["to"] == "not_now"
    assert activities["owner_changed"].actor == recruiter_user


def test_candidate_without_owner_is_unassigned_on_its_profile_form_and_timeline(
    org, recruiter_user, admin_user, recruiter_client, in_org
):
    """Says “Unassigned”, as the candidate list, its Owner filter and the board do."""
    from crm.tests.markup import elements, text

    candidate = CandidateFactory(organization=org)

    page = recruiter_client.get(url("detail", org, candidate.pk)).content.decode()
    form = recruiter_client.get(url("edit", org, candidate.pk)).context["form"]
    with in_org():
        profiles.candidate_update(candidate=candidate, actor=recruiter_user, owner=admin_user)
        change = Activity.objects.get(candidate=candidate, kind="owner_changed")

    facts = [text(element) for element in elements(page) if element.name in {"dt", "dd"}]
    assert facts[facts.index("Owner") + 1] == "Unassigned"
    assert form.fields["owner"].empty_label == "Unassigned"
    assert change.summary == f"Owner: Unassigned → {admin_user.display_name}"


def test_candidate_update_without_changes_records_nothing(org, recruiter_user, in_org):
    candidate = CandidateFactory(organization=org, email="same@example.com", city="London")
    with in_org():
        profiles.candidate_update(
            candidate=candidate, actor=recruiter_user, email="SAME@example.com", city="London"
        )
    assert _activities(candidate) == []


def test_candidate_set_status_not_now_needs_a_date(org, recruiter_user, in_org):
    candidate = CandidateFactory(organization=org)
    with in_org(), pytest.raises(ValidationError) as error:
        profiles.candidate_set_status(candidate=candidate, actor=recruiter_user, status="not_now")
    assert list(error.value.message_dict) == ["not_now_until"]


def test_candidate_set_status_clears_not_now_date(org, recruiter_user, in_org):
    candidate = CandidateFactory(
        organization=org, status="not_now", not_now_until=datetime.date(2099, 1, 1)
    )
    with in_org():
        profiles.candidate_set_status(candidate=candidate, actor=recruiter_user, status="active")
    candidate.refresh_from_db()
    assert (candidate.status, candidate.not_now_until) == ("active", None)
    assert _activities(candidate) == ["status_changed"]


# --- services: notes ----------------------------------------------------------------------


def test_note_create_adds_a_timeline_entry_pointing_at_the_note(org, recruiter_user, in_org):
    candidate = CandidateFactory(organization=org)
    with in_org():
        note = profiles.note_create(
            candidate=candidate, author=recruiter_user, body=" Met at PyCon "
        )
        activity = Activity.objects.get(candidate=candidate)
    assert note.body == "Met at PyCon"
    assert (activity.kind, activity.note_id, activity.actor) == (
        "note_added",
        note.pk,
        recruiter_user,
    )


def test_note_that_records_a_contact_moves_last_contacted_forward_only(org, recruiter_user, in_org):
    earlier = timezone.now() - datetime.timedelta(days=3)
    later = timezone.now() + datetime.timedelta(days=1)
    plain, called, ahead = (
        CandidateFactory(organization=org, last_contacted_at=earlier) for _ in range(3)
    )
    with in_org():
        CandidateContact.objects.filter(candidate=ahead).update(last_contacted_at=later)
        profiles.note_create(candidate=plain, author=recruiter_user, body="Just a thought")
        note = profiles.note_create(
            candidate=called, author=recruiter_user, body="Talked for 20 min", contact="call"
        )
        profiles.note_create(candidate=ahead, author=recruiter_user, body="Met", contact="meeting")
        activity = Activity.objects.get(note=note)
        contacted = [candidate_last_contacted(c) for c in (plain, called, ahead)]
    # A plain note is no contact; a call is; a contact never moves the time back.
    assert contacted == [earlier, note.created_at, later]
    assert (note.contact, activity.data) == ("call", {"contact": "call"})


def test_note_with_an_unknown_contact_kind_is_rejected(org, recruiter_user, in_org):
    candidate = CandidateFactory(organization=org)
    with in_org(), pytest.raises(ValidationError):
        profiles.note_create(candidate=candidate, author=recruiter_user, body="x", contact="fax")
    with scopes_disabled():
        assert not Note.objects.filter(candidate=candidate).exists()


def test_note_update_only_by_its_author(org, recruiter_user, admin_user, in_org):
    note = NoteFactory(candidate=CandidateFactory(organization=org), author=recruiter_user)
    with in_org():
        with pytest.raises(PermissionDenied):
            profiles.note_update(note=note, actor=admin_user, body="Rewritten")
        profiles.note_update(note=note, actor=recruiter_user, body="Rewritten")
    note.refresh_from_db()
    assert note.body == "Rewritten"


def test_note_delete_removes_its_timeline_entry(org, recruiter_user, in_org):
    candidate = CandidateFactory(organization=org)
    with in_org():
        note = profiles.note_create(candidate=candidate, author=recruiter_user, body="Hello")
        profiles.note_delete(note=note, actor=recruiter_user)
    assert _activities(candidate) == []


# --- forms -------------------------------------------------------------------------------


def test_candidate_form_owner_choices_are_recruiters_and_admins(
    org, admin_user, recruiter_user, viewer_user, outsider_user, in_org
):
    with in_org():
        form = CandidateForm(organization=org)
        owners = set(form.fields["owner"].queryset)
    assert owners == {admin_user, recruiter_user}


def test_candidate_form_not_now_needs_a_date(org, in_org):
    with in_org():
        form = CandidateForm(_form_data(status="not_now"), organization=org)
        assert not form.is_valid()
    assert list(form.errors) == ["not_now_until"]


def test_candidate_form_invalid_phone_is_a_field_error(org, in_org):
    with in_org():
        form = CandidateForm(_form_data(phone="12"), organization=org)
        assert not form.is_valid()
    assert list(form.errors) == ["phone"]


# --- views: new and edit -------------------------------------------------------------------


def test_candidate_new_creates_and_redirects_to_the_profile(org, recruiter_client):
    response = recruiter_client.post(url("new", org), _form_data())
    with scopes_disabled():
        candidate = Candidate.objects.get(organization=org)
    assert response.status_code == 302
    assert response["Location"] == url("detail", org, candidate.pk)
    assert (candidate.email, candidate.phone, candidate.skills) == (
        "amara.okafor@example.com",
        "+447911123456",
        ["python", "machine learning"],
    )


def test_candidate_new_duplicate_email_in_other_case_shows_a_form_error(org, recruiter_client):
    existing = CandidateFactory(
        organization=org, first_name="Amara", last_name="Okafor", email="amara.okafor@example.com"
    )
    response = recruiter_client.post(url("new", org), _form_data())
    assert response.status_code == 200
    assert response.context["form"].errors == {
        "email": [
            f"{profiles.DUPLICATE_EMAIL_MESSAGE} "
            f'<a href="{url("detail", org, existing.pk)}">Open Amara Okafor\u2019s profile</a>.'
        ]
    }
    assert "is-invalid" in response.content.decode()


def test_candidate_new_duplicate_email_links_to_the_existing_profile(org, recruiter_client):
    existing = CandidateFactory(organization=org, email="amara.okafor@example.com")
    response = recruiter_client.post(url("new", org), _form_data())
    body = response.content.decode()
    assert f'<a href="{url("detail", org, existing.pk)}">Open ' in body


def test_candidate_edit_own_email_is_no_duplicate(org, recruiter_client):
    candidate = CandidateFactory(organization=org, email="amara.okafor@example.com")
    response = recruiter_client.post(url("edit", org, candidate.pk), _form_data())
    assert response.status_code == 302


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("linkedin_url", "Enter a LinkedIn address, e.g. https://www.linkedin.com/in/jane-doe."),
        ("github_url", "Enter a GitHub address, e.g. https://github.com/janedoe."),
        ("portfolio_url", "Enter a web address, e.g. https://janedoe.dev."),
    ],
)
def test_candidate_form_invalid_link_says_what_an_address_looks_like(org, in_org, field, message):
    with in_org():
        form = CandidateForm(_form_data(**{field: "not a url"}), organization=org)
        assert not form.is_valid()
    assert form.errors == {field: [message]}


def test_candidate_new_page_renders(org, recruiter_client):
    response = recruiter_client.get(url("new", org))
    assert response.status_code == 200
    assert "New candidate" in response.content.decode()


def test_candidate_new_viewer_gets_403(org, viewer_client):
    assert viewer_client.get(url("new", org)).status_code == 403
    assert viewer_client.post(url("new", org), _form_data()).status_code == 403


def test_candidate_new_anonymous_goes_to_login(org, client):
    response = client.get(url("new", org))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_candidate_new_other_org_gets_404(org, outsider_client):
    assert outsider_client.get(url("new", org)).status_code == 404


def test_candidate_edit_saves_and_records_activity(org, recruiter_client):
    candidate = CandidateFactory(organization=org, email="a@example.com", city="Paris")
    data = _form_data(email="a@example.com", city="Lyon")
    response = recruiter_client.post(url("edit", org, candidate.pk), data)
    assert response.status_code == 302
    candidate.refresh_from_db()
    assert candidate.city == "Lyon"
    assert "edited" in _activities(candidate)


def test_candidate_edit_form_is_prefilled(org, recruiter_client):
    candidate = CandidateFactory(organization=org, skills=["python", "go"])
    response = recruiter_client.get(url("edit", org, candidate.pk))
    assert response.status_code == 200
    assert "python, go</textarea>" in response.content.decode()


def test_candidate_edit_viewer_gets_403(org, viewer_client):
    candidate = CandidateFactory(organization=org)
    assert viewer_client.get(url("edit", org, candidate.pk)).status_code == 403
    assert viewer_client.post(url("edit", org, candidate.pk), _form_data()).status_code == 403


def test_candidate_edit_other_org_gets_404(org, outsider_client, other_org):
    candidate = CandidateFactory(organization=org)
    assert outsider_client.get(url("edit", org, candidate.pk)).status_code == 404
    assert outsider_client.get(url("edit", other_org, candidate.pk)).status_code == 404


def test_candidate_edit_anonymous_goes_to_login(org, client):
    candidate = CandidateFactory(organization=org)
    response = client.get(url("edit", org, candidate.pk))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


# --- views: profile page ------------------------------------------------------------------


def test_candidate_detail_shows_the_profile_to_a_viewer(org, viewer_client):
    candidate = CandidateFactory(
        organization=org, first_name="Amara", skills=["python"], engagement_score=None
    )
    response = viewer_client.get(url("detail", org, candidate.pk))
    body = response.content.decode()
    assert response.status_code == 200
    assert "Amara" in body
    assert "Computed by analytics" in body
    assert 'id="note-form"' not in body  # viewers cannot write notes


def test_candidate_detail_other_org_gets_404(org, other_org, outsider_client):
    candidate = CandidateFactory(organization=org)
    assert outsider_client.get(url("detail", org, candidate.pk)).status_code == 404
    assert outsider_client.get(url("detail", other_org, candidate.pk)).status_code == 404


def test_candidate_detail_anonymous_goes_to_login(org, client):
    candidate = CandidateFactory(organization=org)
    response = client.get(url("detail", org, candidate.pk))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_candidate_detail_merged_candidate_leads_to_the_survivor(org, recruiter_client):
    primary = CandidateFactory(organization=org)
    merged = CandidateFactory(organization=org, merged_into=primary)
    response = recruiter_client.get(url("detail", org, merged.pk))
    assert response.status_code == 302
    assert response["Location"] == url("detail", org, primary.pk)


def test_candidate_edit_of_a_merged_candidate_is_404(org, recruiter_client):
    primary = CandidateFactory(organization=org)
    merged = CandidateFactory(organization=org, merged_into=primary)
    assert recruiter_client.get(url("edit", org, merged.pk)).status_code == 404


def _timeline(candidate, count, *, actor=None, with_notes=False):
    start = timezone.now() - datetime.timedelta(days=count)
    with scopes_disabled():
        for i in range(count):
            note = None
            if with_notes and i % 2 == 0:
                note = NoteFactory(candidate=candidate, author=actor, pinned=i % 4 == 0)
            activity_record(
                candidate=candidate,
                kind="note_added" if note else "edited",
                summary=f"entry {i}",
                actor=actor,
                note=note,
                occurred_at=start + datetime.timedelta(days=i),
            )


def test_candidate_timeline_is_newest_first_and_pages_by_keyset(org, in_org, recruiter_user):
    candidate = CandidateFactory(organization=org)
    _timeline(candidate, 5)
    with in_org():
        first, cursor = candidate_timeline(candidate=candidate, user=recruiter_user, limit=3)
        second, end = candidate_timeline(
            candidate=candidate, user=recruiter_user, before=cursor, limit=3
        )
    assert [a.summary for a in first] == ["entry 4", "entry 3", "entry 2"]
    assert [a.summary for a in second] == ["entry 1", "entry 0"]
    assert end is None


def test_candidate_detail_show_older_link_pages_the_timeline(org, recruiter_client):
    candidate = CandidateFactory(organization=org)
    _timeline(candidate, 205)
    first = recruiter_client.get(url("detail", org, candidate.pk))
    cursor = first.context["older_cursor"]
    older = recruiter_client.get(url("detail", org, candidate.pk), {"before": cursor})
    assert len(first.context["timeline"]) == 200
    assert [a.summary for a in older.context["timeline"]] == [
        f"entry {i}" for i in range(4, -1, -1)
    ]
    assert "Show older activity" in first.content.decode()


def test_candidate_detail_unreadable_cursor_shows_the_newest(org, recruiter_client):
    candidate = CandidateFactory(organization=org)
    _timeline(candidate, 2)
    response = recruiter_client.get(url("detail", org, candidate.pk), {"before": "yesterday,x"})
    assert response.status_code == 200
    assert len(response.context["timeline"]) == 2


def _count_detail_queries(client, org, candidate):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url("detail", org, candidate.pk))
    assert response.status_code == 200
    return len(queries)


def test_candidate_detail_query_count_is_constant(org, recruiter_client, recruiter_user):
    counts = []
    for entries in (1, 3, 200):
        candidate = CandidateFactory(organization=org)
        _timeline(candidate, entries, actor=UserFactory(), with_notes=True)
        counts.append(_count_detail_queries(recruiter_client, org, candidate))
    assert counts[0] == counts[1] == counts[2]


def test_candidate_detail_query_count_is_the_same_with_every_panel_full(
    org, recruiter_client, recruiter_user
):
    """The duplicates card's suggestions and merges come with their profiles and users: a
    field it showed but its queries had not selected would cost a query per row."""
    from candidates.models import DuplicateSuggestion
    from candidates.services.merge import candidate_merge

    bare = CandidateFactory(organization=org)
    _timeline(bare, 3, actor=UserFactory(), with_notes=True)
    bare_count = _count_detail_queries(recruiter_client, org, bare)

    full = CandidateFactory(organization=org, owner=recruiter_user)
    _timeline(full, 3, actor=UserFactory(), with_notes=True)
    with scopes_disabled():
        for _ in range(3):
            other = CandidateFactory(organization=org, current_company="Acme")
            DuplicateSuggestion.objects.create(
                organization=org,
                candidate_a_id=min(full.pk, other.pk),
                candidate_b_id=max(full.pk, other.pk),
                reason="name_company",
            )
        for _ in range(2):
            candidate_merge(
                primary=full,
                secondary=CandidateFactory(organization=org),
                field_choices={},
                actor=recruiter_user,
            )
    response = recruiter_client.get(url("detail", org, full.pk))
    body = response.content.decode()

    assert body.count("Compare and merge") == 3
    assert body.count("bi-arrow-counterclockwise") == 2  # an Undo button per merge
    assert _count_detail_queries(recruiter_client, org, full) == bare_count


def test_candidate_detail_never_reads_the_resume_text_or_search_columns(org, recruiter_client):
    """Neither selected with the profile nor loaded later by something on the page that
    touches a deferred field (which would cost a query on every profile)."""
    candidate = CandidateFactory(organization=org, resume_text="Kubernetes " * 2000)
    _timeline(candidate, 3, actor=UserFactory(), with_notes=True)
    with CaptureQueriesContext(connection) as queries:
        response = recruiter_client.get(url("detail", org, candidate.pk))
    assert response.status_code == 200
    read = [q["sql"] for q in queries if "candidates_candidate" in q["sql"]]
    assert read
    for column in ("resume_text", "search_vector", "search_name"):
        assert not [sql for sql in read if f'"{column}"' in sql], column


def test_candidate_detail_shows_current_note_body_and_pinned_notes(
    org, recruiter_client, recruiter_user, in_org
):
    candidate = CandidateFactory(organization=org)
    with in_org():
        note = profiles.note_create(candidate=candidate, author=recruiter_user, body="First words")
        profiles.note_update(note=note, actor=recruiter_user, body="Better words")
        profiles.note_pin(note=note, actor=recruiter_user)
    body = recruiter_client.get(url("detail", org, candidate.pk)).content.decode()
    assert "First words" not in body
    assert body.count("Better words") == 2  # in the Pinned card and on the timeline
    assert 'id="pinned-note-' in body


def test_candidate_detail_renders_note_markdown_safely_when_pinned_and_on_the_timeline(
    org, recruiter_client, recruiter_user, in_org
):
    candidate = CandidateFactory(organization=org)
    with in_org():
        note = profiles.note_create(
            candidate=candidate,
            author=recruiter_user,
            body=(
                "**Strong** fit\n# not a heading\n\n- one\n- two\n\n"
                "<script>alert(1)</script> [site](https://example.com) [bad](javascript:alert(1))"
                " ![pixel](https://tracker.example/p.gif)"
            ),
        )
        profiles.note_pin(note=note, actor=recruiter_user)

    body = recruiter_client.get(url("detail", org, candidate.pk)).content.decode()

    assert body.count("<strong>Strong</strong> fit<br />\n# not a heading</p>") == 2
    assert body.count("<ul>\n<li>one</li>\n<li>two</li>\n</ul>") == 2
    assert body.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 2
    assert body.count('<a href="https://example.com" rel="nofollow noopener">site</a>') == 2
    assert "<script>alert(1)" not in body
    assert 'href="javascript:' not in body
    assert 'src="https://tracker.example' not in body  # a note loads nothing from elsewhere


def test_note_form_says_markdown_works(org, recruiter_client):
    candidate = CandidateFactory(organization=org)

    body = recruiter_client.get(url("detail", org, candidate.pk)).content.decode()

    assert "Markdown works: **bold**, *italic*, lists and [links](https://…)." in body


# --- views: notes -------------------------------------------------------------------------


def test_note_add_creates_a_note_and_redirects(org, recruiter_client, recruiter_user):
    candidate = CandidateFactory(organization=org)
    response = recruiter_client.post(url("note_add", org, candidate.pk), {"body": "Great call"})
    assert response.status_code == 302
    with scopes_disabled():
        note = Note.objects.get(candidate=candidate)
    assert (note.body, note.author, note.pinned) == ("Great call", recruiter_user, False)


def test_note_add_with_htmx_returns_the_activity_column(org, recruiter_client):
    candidate = CandidateFactory(organization=org)
    response = recruiter_client.post(
        url("note_add", org, candidate.pk),
        {"body": "Via htmx", "pinned": "on"},
        HTTP_HX_REQUEST="true",
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<section id="activity"')
    assert "Via htmx" in body and "Pinned" in body


def test_note_add_logging_a_call_shows_it_on_the_timeline_and_the_header(org, recruiter_client):
    candidate = CandidateFactory(organization=org, last_contacted_at=None)
    response = recruiter_client.post(
        url("note_add", org, candidate.pk),
        {"body": "Caught up about the platform team", "contact": "call"},
        follow=True,
    )
    body = response.content.decode()
    with scopes_disabled():
        assert candidate_last_contacted(candidate) is not None
    assert "Contact logged." in body
    assert "bi-telephone" in body and '<span class="fw-semibold">Call</span>' in body


def test_note_add_logging_a_call_with_htmx_also_swaps_the_last_contacted_fact(
    org, recruiter_client
):
    candidate = CandidateFactory(organization=org, last_contacted_at=None)
    plain = recruiter_client.post(
        url("note_add", org, candidate.pk), {"body": "Thoughts"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    logged = recruiter_client.post(
        url("note_add", org, candidate.pk),
        {"body": "Met for coffee", "contact": "meeting"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "last-contacted" not in plain
    fact = logged[logged.index('<dd id="last-contacted" hx-swap-oob="true">') :]
    assert "Never" not in fact[: fact.index("</dd>")] and "now" in fact[: fact.index("</dd>")]


def test_note_add_with_an_unknown_contact_kind_shows_an_error(org, recruiter_client):
    candidate = CandidateFactory(organization=org)
    response = recruiter_client.post(
        url("note_add", org, candidate.pk), {"body": "Hello", "contact": "pigeon"}
    )
    assert response.status_code == 200
    assert "contact" in response.context["note_form"].errors
    with scopes_disabled():
        assert not Note.objects.filter(candidate=candidate).exists()


def test_note_add_empty_body_shows_an_error(org, recruiter_client):
    candidate = CandidateFactory(organization=org)
    response = recruiter_client.post(url("note_add", org, candidate.pk), {"body": ""})
    assert response.status_code == 200
    assert response.context["note_form"].errors == {"body": ["This field is required."]}


def test_note_add_viewer_gets_403(org, viewer_client):
    candidate = CandidateFactory(organization=org)
    assert viewer_client.post(url("note_add", org, candidate.pk), {"body": "x"}).status_code == 403


def test_note_add_get_is_405(org, recruiter_client):
    candidate = CandidateFactory(organization=org)
    assert recruiter_client.get(url("note_add", org, candidate.pk)).status_code == 405


def test_note_add_other_org_gets_404(org, other_org, outsider_client):
    candidate = CandidateFactory(organization=org)
    response = outsider_client.post(url("note_add", other_org, candidate.pk), {"body": "x"})
    assert response.status_code == 404


def test_note_add_anonymous_goes_to_login(org, client):
    candidate = CandidateFactory(organization=org)
    response = client.post(url("note_add", org, candidate.pk), {"body": "x"})
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_note_edit_by_author_saves(org, recruiter_client, recruiter_user):
    note = NoteFactory(candidate=CandidateFactory(organization=org), author=recruiter_user)
    page = recruiter_client.get(url("note_edit", org, note.candidate_id, note.pk))
    response = recruiter_client.post(
        url("note_edit", org, note.candidate_id, note.pk), {"body": "Edited"}
    )
    note.refresh_from_db()
    assert page.status_code == 200
    assert "Save note" in page.content.decode()
    assert response.status_code == 302
    assert note.body == "Edited"


def test_note_edit_by_someone_else_gets_403(org, admin_client, recruiter_user):
    note = NoteFactory(candidate=CandidateFactory(organization=org), author=recruiter_user)
    edit = url("note_edit", org, note.candidate_id, note.pk)
    assert admin_client.get(edit).status_code == 403
    assert admin_client.post(edit, {"body": "Hijack"}).status_code == 403
    delete = url("note_delete", org, note.candidate_id, note.pk)
    assert admin_client.post(delete).status_code == 403


def test_note_edit_viewer_gets_403(org, viewer_client, viewer_user):
    note = NoteFactory(candidate=CandidateFactory(organization=org), author=viewer_user)
    edit = url("note_edit", org, note.candidate_id, note.pk)
    assert viewer_client.post(edit, {"body": "x"}).status_code == 403


def test_note_edit_note_of_another_candidate_gets_404(org, recruiter_client, recruiter_user):
    note = NoteFactory(candidate=CandidateFactory(organization=org), author=recruiter_user)
    other = CandidateFactory(organization=org)
    assert recruiter_client.get(url("note_edit", org, other.pk, note.pk)).status_code == 404


def test_note_edit_other_org_gets_404(org, other_org, outsider_client, outsider_user):
    note = NoteFactory(candidate=CandidateFactory(organization=org), author=outsider_user)
    response = outsider_client.post(
        url("note_edit", other_org, note.candidate_id, note.pk), {"body": "x"}
    )
    assert response.status_code == 404


def test_note_delete_by_author(org, recruiter_client, recruiter_user):
    note = NoteFactory(candidate=CandidateFactory(organization=org), author=recruiter_user)
    response = recruiter_client.post(url("note_delete", org, note.candidate_id, note.pk))
    assert response.status_code == 302
    with scopes_disabled():
        assert not Note.objects.filter(pk=note.pk).exists()


def test_note_delete_viewer_gets_403(org, viewer_client, viewer_user):
    note = NoteFactory(candidate=CandidateFactory(organization=org), author=viewer_user)
    response = viewer_client.post(url("note_delete", org, note.candidate_id, note.pk))
    assert response.status_code == 403


def test_note_pin_and_unpin(org, admin_client, recruiter_user):
    note = NoteFactory(candidate=CandidateFactory(organization=org), author=recruiter_user)
    pin = url("note_pin", org, note.candidate_id, note.pk)
    admin_client.post(pin, {"pinned": "1"})
    note.refresh_from_db()
    assert note.pinned is True
    response = admin_client.post(pin, {"pinned": "0"}, HTTP_HX_REQUEST="true")
    note.refresh_from_db()
    assert note.pinned is False
    assert response.status_code == 200


def test_note_pin_viewer_gets_403(org, viewer_client):
    note = NoteFactory(candidate=CandidateFactory(organization=org))
    response = viewer_client.post(url("note_pin", org, note.candidate_id, note.pk))
    assert response.status_code == 403


def test_note_pin_other_org_gets_404(org, other_org, outsider_client):
    note = NoteFactory(candidate=CandidateFactory(organization=org))
    response = outsider_client.post(url("note_pin", other_org, note.candidate_id, note.pk))
    assert response.status_code == 404


def test_note_edit_link_only_shown_to_the_author(org, recruiter_client, admin_user):
    candidate = CandidateFactory(organization=org)
    NoteFactory(candidate=candidate, author=admin_user, body="Admin wrote this")
    with scopes_disabled():
        note = Note.objects.get(candidate=candidate)
        activity_record(candidate=candidate, kind="note_added", actor=admin_user, note=note)
    body = recruiter_client.get(url("detail", org, candidate.pk)).content.decode()
    assert "Admin wrote this" in body
    assert url("note_edit", org, candidate.pk, note.pk) not in body


def test_candidate_detail_timeline_entry_shows_kind_actor_and_time(
    org, recruiter_client, recruiter_user
):
    candidate = CandidateFactory(organization=org)
    with scopes_disabled():
        activity_record(
            candidate=candidate,
            kind="stage_changed",
            summary="Moved to Interviewing",
            actor=recruiter_user,
            occurred_at=timezone.now() - datetime.timedelta(days=3),
        )
    body = recruiter_client.get(url("detail", org, candidate.pk)).content.decode()
    assert '<span class="fw-semibold">Stage changed</span>' in body
    assert f"by {recruiter_user.display_name}" in body
    assert "3\xa0days ago</time>" in body
    assert "Moved to Interviewing" in body


# --- profile links on their sites, tags never cut ------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "valid"),
    [
        ("linkedin_url", "https://www.linkedin.com/in/amara", True),
        ("linkedin_url", "uk.linkedin.com/in/amara", True),
        ("linkedin_url", "https://linkedin.com/in/amara", True),
        ("linkedin_url", "https://example.com/not-linkedin", False),
        ("linkedin_url", "https://linkedin.com.evil.example/in/amara", False),
        ("linkedin_url", "https://notlinkedin.com/in/amara", False),
        ("github_url", "https://github.com/amara", True),
        ("github_url", "https://gist.github.com/amara", True),
        ("github_url", "https://gitlab.com/amara", False),
        ("portfolio_url", "https://example.com/anything", True),
    ],
)
def test_candidate_form_profile_links_must_be_on_their_site(org, in_org, field, value, valid):
    with in_org():
        form = CandidateForm(_form_data(**{field: value}), organization=org)
        assert form.is_valid() is valid
    if not valid:
        site = "linkedin.com" if field == "linkedin_url" else "github.com"
        [error] = form.errors[field]
        assert f"(on {site})" in error


def test_candidate_create_service_refuses_a_linkedin_link_elsewhere(org, recruiter_user, in_org):
    with in_org(), pytest.raises(ValidationError) as raised:
        profiles.candidate_create(
            organization=org,
            actor=recruiter_user,
            first_name="Amara",
            linkedin_url="https://example.com/not-linkedin",
        )
    assert list(raised.value.message_dict) == ["linkedin_url"]


def test_candidate_form_refuses_a_tag_longer_than_64_characters(org, in_org):
    long_tag = "x" * 65
    with in_org():
        form = CandidateForm(_form_data(tags=f"ok, {long_tag}", skills="y" * 70), organization=org)
        assert not form.is_valid()
    assert set(form.errors) == {"tags", "skills"}
    assert "longer than 64 characters" in form.errors["tags"][0]


def test_candidate_form_keeps_a_tag_of_64_characters(org, in_org):
    with in_org():
        form = CandidateForm(_form_data(tags="x" * 64), organization=org)
        assert form.is_valid()
    assert form.cleaned_data["tags"] == ["x" * 64]


def test_candidate_detail_long_unbroken_name_and_skill_can_wrap(org, viewer_client):
    long_name = "A" * 100
    candidate = CandidateFactory(
        organization=org, first_name=long_name, last_name="", skills=["s" * 64], tags=["t" * 64]
    )

    body = viewer_client.get(url("detail", org, candidate.pk)).content.decode()

    assert re.search(r'<h1 class="[^"]*\btext-break\b[^"]*" id="candidate-name">A{100}', body)
    assert re.search(r'<li class="[^"]*\btext-break\b[^"]*" aria-current="page">A{100}', body)
    assert re.search(r'<span class="[^"]*\btext-wrap text-break mw-100\b[^"]*">s{64}', body)
    assert re.search(
        r"\btext-wrap text-break mw-100\b[^>]*>\s*<i class=\"bi bi-tag\"[^>]*></i> t{64}", body
    )
