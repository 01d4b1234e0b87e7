"""Settings → Suppressions: the list, adding addresses by hand, lifting what an admin may lift,
and the CSV download. The role and isolation sweeps (tests/) cover the URLs for viewers,
recruiters and other organisations; these check what the pages do."""

import csv
import io

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_scopes import scopes_disabled

from campaigns.models import Enrollment, Suppression
from campaigns.services import sequences
from campaigns.services.suppressions import ADD_LIMIT, suppression_lift
from campaigns.tests.test_sequences import enrollment_of, launched
from candidates.models import Activity
from candidates.tests.factories import CandidateFactory

pytestmark = pytest.mark.django_db


def _url(org, name="suppression_list", *args):
    return reverse(f"campaigns:{name}", args=[org.slug, *args])


def _suppress(org, email, reason=Suppression.Reason.MANUAL, detail=""):
    with scopes_disabled():
        return Suppression.objects.create(
            organization=org, email=email, reason=reason, detail=detail
        )


def _rows(org) -> dict[str, tuple[str, str]]:
    with scopes_disabled():
        return {s.email: (s.reason, s.detail) for s in Suppression.objects.filter(organization=org)}


def _said(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _timeline(candidate) -> list[str]:
    with scopes_disabled():
        return list(
            Activity.objects.filter(
                candidate=candidate, kind=Activity.Kind.CONSENT_CHANGED
            ).values_list("summary", flat=True)
        )


# --- adding ---


def test_admin_adds_addresses_lower_cased_once_each_and_keeps_existing_reasons(admin_client, org):
    _suppress(org, "left@example.com", Suppression.Reason.UNSUBSCRIBED, "link")
    response = admin_client.post(
        _url(org),
        {
            "addresses": "Ann@Example.com, bob@example.com;\nann@example.com\n\n<left@example.com>",
            "note": "Asked by phone",
        },
    )
    assert response.status_code == 302
    assert _rows(org) == {
        "ann@example.com": ("manual", "Asked by phone"),
        "bob@example.com": ("manual", "Asked by phone"),
        "left@example.com": ("unsubscribed", "link"),  # an unsubscribe stays an unsubscribe
    }
    assert _said(response) == ["2 addresses suppressed; 1 was on the list already."]


def test_one_bad_entry_refuses_the_whole_list_and_keeps_it_in_the_box(admin_client, org):
    typed = "ann@example.com\nnot-an-address\nbob@@example.com"
    response = admin_client.post(_url(org), {"addresses": typed, "note": ""})
    assert response.status_code == 200
    errors = response.context["form"].errors["addresses"]
    assert errors == [
        "Not email addresses: “not-an-address”, “bob@@example.com”. "
        "Correct them (nothing was added yet)."
    ]
    assert typed in response.content.decode()
    assert _rows(org) == {}


def test_too_many_addresses_at_once_is_refused(admin_client, org):
    typed = "\n".join(f"p{n}@example.com" for n in range(ADD_LIMIT + 1))
    response = admin_client.post(_url(org), {"addresses": typed})
    assert response.status_code == 200
    assert "add at most 1,000 at a time" in response.content.decode()
    assert _rows(org) == {}


def test_an_address_longer_than_the_column_is_an_error_not_a_500(admin_client, org):
    long_address = "a" * 64 + "@" + ".".join(["b" * 60] * 4) + ".com"  # valid, 313 characters
    response = admin_client.post(_url(org), {"addresses": long_address})
    assert response.status_code == 200
    assert response.context["form"].errors["addresses"]
    assert _rows(org) == {}


def test_suppressing_an_enrolled_candidate_stops_their_campaigns_and_says_so(
    admin_client, admin_user, org
):
    campaign, (person,) = launched(org, admin_user, [{}, {"delay": "P2D"}])
    assert enrollment_of(campaign, person).status == Enrollment.Status.ACTIVE
    response = admin_client.post(_url(org), {"addresses": person.email, "note": "Asked by phone"})
    assert _said(response) == ["1 address suppressed; 1 campaign enrollment stopped."]
    enrollment = enrollment_of(campaign, person)
    assert (enrollment.status, enrollment.stop_reason) == (
        Enrollment.Status.STOPPED,
        Enrollment.StopReason.SUPPRESSED,
    )
    assert _timeline(person) == [
        f"Email address suppressed by {admin_user.get_full_name() or admin_user.email}: Asked by phone"
    ]
    # And no campaign takes them in again while the address is suppressed.
    again, _ = launched(org, admin_user, [{}], candidates=0, name="Another")
    with scopes_disabled():
        assert sequences.sequence_enroll(campaign=again, candidate_ids=[person.pk]) == 0


# --- lifting ---


@pytest.mark.parametrize("reason", [Suppression.Reason.MANUAL, Suppression.Reason.BOUNCED])
def test_admin_lifts_a_manual_or_bounced_suppression(admin_client, admin_user, org, reason):
    person = CandidateFactory(organization=org, email="ann@example.com")
    suppression = _suppress(org, "ann@example.com", reason)
    response = admin_client.post(_url(org, "suppression_lift", suppression.pk))
    assert response.status_code == 302
    assert _rows(org) == {}
    assert _said(response) == [
        "ann@example.com is no longer suppressed: new campaigns can reach it."
    ]
    label = "added by a recruiter" if reason == "manual" else "hard bounce"
    name = admin_user.get_full_name() or admin_user.email
    assert _timeline(person) == [f"Suppression lifted by {name} (was: {label})"]


@pytest.mark.parametrize(
    ("reason", "said"),
    [
        (Suppression.Reason.UNSUBSCRIBED, "Only the candidate can undo an unsubscribe"),
        (Suppression.Reason.COMPLAINED, "A spam complaint is not lifted here"),
    ],
)
def test_unsubscribes_and_complaints_are_not_lifted(admin_client, org, reason, said):
    suppression = _suppress(org, "ann@example.com", reason)
    response = admin_client.post(_url(org, "suppression_lift", suppression.pk))
    assert response.status_code == 302
    assert _rows(org) == {"ann@example.com": (reason, "")}
    assert _said(response)[0].startswith(said)


def test_a_complaint_that_arrives_while_the_admin_looks_is_not_lifted(org, admin_user):
    suppression = _suppress(org, "ann@example.com", Suppression.Reason.BOUNCED)
    with scopes_disabled():  # the webhook turns the row into a complaint (update_or_create)
        Suppression.objects.filter(pk=suppression.pk).update(reason=Suppression.Reason.COMPLAINED)
        with pytest.raises(ValidationError, match="changed meanwhile"):
            suppression_lift(suppression=suppression, actor=admin_user)
    assert _rows(org) == {"ann@example.com": ("complained", "")}


# --- the list ---


def test_list_counts_filters_and_pages_in_constant_queries(admin_client, org):
    for n in range(3):
        _suppress(org, f"bounce{n}@example.com", Suppression.Reason.BOUNCED)
    _suppress(org, "left@example.com", Suppression.Reason.UNSUBSCRIBED)
    page = admin_client.get(_url(org))
    assert page.status_code == 200
    assert dict((r, c) for r, _, c in page.context["counts"]) == {
        "unsubscribed": 1,
        "bounced": 3,
        "complained": 0,
        "manual": 0,
    }
    shown = [s.email for s in page.context["page_obj"]]
    assert shown == [
        "left@example.com",
        "bounce2@example.com",
        "bounce1@example.com",
        "bounce0@example.com",
    ]
    html = page.content.decode()
    assert html.count(">Lift</button>") == 3
    assert "Candidate only" in html

    filtered = admin_client.get(_url(org), {"reason": "bounced", "email": "CE1"})
    assert [s.email for s in filtered.context["page_obj"]] == ["bounce1@example.com"]

    for n in range(3, 60):
        _suppress(org, f"bounce{n}@example.com", Suppression.Reason.BOUNCED)
    with CaptureQueriesContext(connection) as few:
        admin_client.get(_url(org))
    with CaptureQueriesContext(connection) as many:
        second = admin_client.get(_url(org), {"page": "2"})
    assert len(many) == len(few)
    assert len(second.context["page_obj"]) == 11


def test_empty_list_and_empty_filter_say_so(admin_client, org):
    assert "No suppressed addresses" in admin_client.get(_url(org)).content.decode()
    _suppress(org, "ann@example.com")
    html = admin_client.get(_url(org), {"email": "nobody"}).content.decode()
    assert "No suppressed address matches" in html


def test_a_bad_filter_value_is_not_a_500(admin_client, org):
    _suppress(org, "ann@example.com")
    response = admin_client.get(_url(org), {"reason": "nonsense", "page": "x"})
    assert response.status_code == 200
    assert list(response.context["page_obj"]) == []


# --- roles ---


@pytest.mark.parametrize("client_name", ["recruiter_client", "viewer_client"])
def test_only_admins_see_or_change_the_list(request, org, client_name):
    client = request.getfixturevalue(client_name)
    suppression = _suppress(org, "ann@example.com", Suppression.Reason.BOUNCED)
    assert client.get(_url(org)).status_code == 403
    assert client.post(_url(org), {"addresses": "bob@example.com"}).status_code == 403
    assert client.post(_url(org, "suppression_lift", suppression.pk)).status_code == 403
    assert client.get(_url(org, "suppressions_export")).status_code == 403
    assert _rows(org) == {"ann@example.com": ("bounced", "")}


# --- the download ---


def test_csv_download_has_every_row_with_formulas_neutralised(admin_client, org, other_org):
    _suppress(org, "ann@example.com", Suppression.Reason.BOUNCED, '=HYPERLINK("x")')
    _suppress(org, "=cmd@example.com", Suppression.Reason.MANUAL)
    _suppress(other_org, "theirs@example.com", Suppression.Reason.MANUAL)
    response = admin_client.get(_url(org, "suppressions_export"))
    assert response.status_code == 200
    assert response["Content-Disposition"].endswith('-suppressions.csv"')
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == ["email", "reason", "detail", "suppressed_at"]
    assert [row[:3] for row in rows[1:]] == [
        ["ann@example.com", "Hard bounce", '\'=HYPERLINK("x")'],
        ["'=cmd@example.com", "Added by a recruiter", ""],
    ]
