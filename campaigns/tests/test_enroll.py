import html
import re

import pytest
from django.urls import reverse
from django_scopes import scopes_disabled

from campaigns.models import Campaign, Enrollment, Step
from campaigns.tests.factories import make_candidates
from candidates.models import Candidate

pytestmark = pytest.mark.django_db


@pytest.fixture
def sequence(org, recruiter_user):
    with scopes_disabled():
        campaign = Campaign.objects.create(
            organization=org,
            name="Keep warm",
            kind=Campaign.Kind.SEQUENCE,
            status=Campaign.Status.RUNNING,
            sender=recruiter_user,
            created_by=recruiter_user,
        )
        Step.objects.create(
            organization=org,
            campaign=campaign,
            position=1,
            kind=Step.Kind.EMAIL,
            subject="Hello {{ first_name }}",
            body_markdown="Hi",
        )
    return campaign


def _enrolled(campaign):
    with scopes_disabled():
        return set(Enrollment.objects.filter(campaign=campaign).values_list("candidate", flat=True))


def test_bulk_menu_hands_the_selection_to_the_enroll_page(recruiter_client, org, sequence):
    people = make_candidates(org, 2)
    response = recruiter_client.get(
        reverse("candidates:bulk", args=[org.slug]),
        {"action": "sequence_enroll", "ids": [p.pk for p in people]},
    )
    assert response.status_code == 302
    page = recruiter_client.get(response["Location"]).content.decode()
    assert "2 selected candidates will join" in page
    assert "Keep warm" in page


def test_enroll_ticked_candidates_skips_do_not_contact_and_reports_it(
    recruiter_client, org, sequence
):
    people = make_candidates(org, 3)
    with scopes_disabled():
        Candidate.objects.filter(pk=people[2].pk).update(status=Candidate.Status.DO_NOT_CONTACT)

    response = recruiter_client.post(
        reverse("campaigns:enroll", args=[org.slug]),
        {"campaign": sequence.pk, "candidate": [p.pk for p in people]},
        follow=True,
    )

    assert _enrolled(sequence) == {people[0].pk, people[1].pk}
    page = response.content.decode()
    assert "2 candidates enrolled" in page
    assert "1 of the selection did not join" in page


def test_enroll_all_matching_a_filter_query(recruiter_client, org, sequence):
    lisbon = make_candidates(org, 2, city="Lisbon")
    make_candidates(org, 1, city="Porto")

    recruiter_client.post(
        reverse("campaigns:enroll", args=[org.slug]),
        {"campaign": sequence.pk, "query": "city=Lisbon"},
    )

    assert _enrolled(sequence) == {c.pk for c in lisbon}


def test_enroll_without_a_sequence_chosen_re_renders_with_the_error(
    recruiter_client, org, sequence
):
    person = make_candidates(org, 1)[0]
    response = recruiter_client.post(
        reverse("campaigns:enroll", args=[org.slug]), {"candidate": [person.pk]}
    )
    assert response.status_code == 200
    assert "This field is required" in response.content.decode()
    assert _enrolled(sequence) == set()


def test_enroll_is_forbidden_to_viewers(viewer_client, org, sequence):
    response = viewer_client.post(
        reverse("campaigns:enroll", args=[org.slug]), {"campaign": sequence.pk, "query": ""}
    )
    assert response.status_code == 403


def test_enroll_ignores_other_organisations_candidates(recruiter_client, org, other_org, sequence):
    foreign = make_candidates(other_org, 1)[0]
    recruiter_client.post(
        reverse("campaigns:enroll", args=[org.slug]),
        {"campaign": sequence.pk, "candidate": [foreign.pk]},
    )
    assert _enrolled(sequence) == set()


def _confirmation_form(response) -> dict:
    """The hidden fields of the enroll page's form, as a browser would send them back."""
    form = response.content.decode().split('class="card-body')[1].split("</form>")[0]
    fields = re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form)
    return {name: html.unescape(value) for name, value in fields if name != "csrfmiddlewaretoken"}


def test_enroll_all_matching_leaves_out_candidates_added_after_confirming(
    recruiter_client, org, sequence
):
    confirmed = make_candidates(org, 2, city="Lisbon")
    page = recruiter_client.get(
        reverse("campaigns:enroll", args=[org.slug]), {"query": "city=Lisbon"}
    )
    assert "All 2 candidates matching your search will join" in page.content.decode()
    # While the recruiter picks the sequence, an import adds someone in Lisbon.
    make_candidates(org, 1, city="Lisbon")

    response = recruiter_client.post(
        reverse("campaigns:enroll", args=[org.slug]),
        {**_confirmation_form(page), "campaign": sequence.pk},
        follow=True,
    )

    assert _enrolled(sequence) == {c.pk for c in confirmed}
    body = response.content.decode()
    assert "2 candidates enrolled in “Keep warm”." in body
    assert "did not join" not in body and "confirmed" not in body


def test_enroll_from_a_page_without_the_bound_enrolls_everyone_matching_at_the_post(
    recruiter_client, org, sequence
):
    # A page shown before the bound was carried sends only the query: bounded when posted.
    lisbon = make_candidates(org, 2, city="Lisbon")
    recruiter_client.get(reverse("campaigns:enroll", args=[org.slug]), {"query": "city=Lisbon"})
    lisbon += make_candidates(org, 1, city="Lisbon")

    response = recruiter_client.post(
        reverse("campaigns:enroll", args=[org.slug]),
        {"campaign": sequence.pk, "query": "city=Lisbon"},
        follow=True,
    )

    assert _enrolled(sequence) == {c.pk for c in lisbon}
    assert "3 candidates enrolled" in response.content.decode()


def test_enroll_says_when_fewer_were_found_than_confirmed(recruiter_client, org, sequence):
    lisbon = make_candidates(org, 3, city="Lisbon")
    page = recruiter_client.get(
        reverse("campaigns:enroll", args=[org.slug]), {"query": "city=Lisbon"}
    )
    with scopes_disabled():
        Candidate.objects.filter(pk=lisbon[0].pk).update(city="Porto")

    response = recruiter_client.post(
        reverse("campaigns:enroll", args=[org.slug]),
        {**_confirmation_form(page), "campaign": sequence.pk},
        follow=True,
    )

    assert _enrolled(sequence) == {lisbon[1].pk, lisbon[2].pk}
    body = response.content.decode()
    assert "2 candidates enrolled" in body
    assert (
        "Found 2 of the 3 confirmed: the other 1 had been deleted or no longer matched in the "
        "meantime." in body
    )


def test_enroll_page_is_a_narrow_card_styled_by_the_global_stylesheet(
    recruiter_client, org, sequence
):
    person = make_candidates(org, 1)[0]

    page = recruiter_client.get(
        reverse("campaigns:enroll", args=[org.slug]), {"candidate": [person.pk]}
    ).content.decode()

    # .form-narrow is in css/rapport.css (candidates/tests/test_form_layout.py); this page
    # loads no app stylesheet of its own.
    assert '<div class="card form-narrow">' in page
    assert "css/rapport.css" in page
    assert "pipelines.css" not in page
