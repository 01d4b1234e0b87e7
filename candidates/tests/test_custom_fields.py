import datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_scopes import scopes_disabled

from candidates.forms import CandidateForm
from candidates.models import CustomField
from candidates.services import custom_fields, profiles
from candidates.tests.factories import CandidateFactory, CustomFieldFactory

pytestmark = pytest.mark.django_db


def url(name, org, *args):
    return reverse(f"candidates:{name}", args=[org.slug, *args])


@pytest.fixture
def notice(org):
    return CustomFieldFactory(
        organization=org, key="notice_weeks", label="Notice period (weeks)", field_type="number"
    )


@pytest.fixture
def authorisation(org):
    return CustomFieldFactory(
        organization=org,
        key="work_authorisation",
        label="Work authorisation",
        field_type="choice",
        choices=["Citizen", "Visa required"],
    )


# --- definitions --------------------------------------------------------------------------


def test_custom_field_create_derives_key_from_label(org, in_org):
    with in_org():
        field = custom_fields.custom_field_create(
            organization=org, label="Notice period (weeks)", field_type="number"
        )
    assert (field.key, field.label, field.choices) == (
        "notice_period_weeks",
        "Notice period (weeks)",
        [],
    )


def test_custom_field_create_duplicate_key_is_an_error(org, notice, in_org):
    with in_org(), pytest.raises(ValidationError) as error:
        custom_fields.custom_field_create(
            organization=org, label="Notice", key="notice_weeks", field_type="text"
        )
    assert list(error.value.message_dict) == ["key"]


def test_custom_field_create_choice_needs_choices(org, in_org):
    with in_org(), pytest.raises(ValidationError) as error:
        custom_fields.custom_field_create(
            organization=org, label="Visa", field_type="choice", choices="\n \n"
        )
    assert list(error.value.message_dict) == ["choices"]


def test_custom_field_create_cleans_choices(org, in_org):
    with in_org():
        field = custom_fields.custom_field_create(
            organization=org, label="Visa", field_type="choice", choices="Yes\n  No \nYes\n"
        )
    assert field.choices == ["Yes", "No"]


# --- values -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field_type", "raw", "stored"),
    [
        ("text", "  Open to relocation ", "Open to relocation"),
        ("number", "4", 4),
        ("number", "2.5", 2.5),
        ("number", "1,000", 1000),
        ("date", "2025-03-01", "2025-03-01"),
        ("date", datetime.date(2025, 3, 1), "2025-03-01"),
        ("choice", "visa required", "Visa required"),
        ("text", "", None),
    ],
)
def test_custom_field_value_clean_accepts_valid_values(field_type, raw, stored):
    field = CustomField(
        label="F", key="f", field_type=field_type, choices=["Citizen", "Visa required"]
    )
    assert custom_fields.custom_field_value_clean(field=field, value=raw) == stored


@pytest.mark.parametrize(
    ("field_type", "raw"),
    [
        ("number", "four"),
        ("number", "NaN"),
        ("number", "1e5000"),
        ("number", "1e1000000"),
        ("number", "-5"),
        ("number", "123456789012"),
        ("date", "01/03/2025"),
        ("choice", "Maybe"),
    ],
)
def test_custom_field_value_clean_rejects_invalid_values(field_type, raw):
    field = CustomField(
        label="F", key="f", field_type=field_type, choices=["Citizen", "Visa required"]
    )
    with pytest.raises(ValidationError):
        custom_fields.custom_field_value_clean(field=field, value=raw)


def test_candidate_update_stores_custom_values_by_key_and_keeps_archived_ones(
    org, recruiter_user, notice, authorisation, in_org
):
    archived = CustomFieldFactory(organization=org, key="old", archived=True)
    candidate = CandidateFactory(organization=org, custom_fields={archived.key: "kept"})
    with in_org():
        profiles.candidate_update(
            candidate=candidate,
            actor=recruiter_user,
            custom_fields={"notice_weeks": "6", "work_authorisation": "citizen"},
        )
    candidate.refresh_from_db()
    assert candidate.custom_fields == {
        "old": "kept",
        "notice_weeks": 6,
        "work_authorisation": "Citizen",
    }


def test_candidate_update_rejects_unknown_and_invalid_custom_values(
    org, recruiter_user, notice, in_org
):
    candidate = CandidateFactory(organization=org)
    with in_org(), pytest.raises(ValidationError) as error:
        profiles.candidate_update(
            candidate=candidate,
            actor=recruiter_user,
            custom_fields={"notice_weeks": "soon", "nope": "x"},
        )
    assert error.value.message_dict == {
        "custom_fields": [
            "Notice period (weeks): enter a number.",
            "Unknown custom field “nope”.",
        ]
    }


def test_candidate_form_renders_active_custom_fields_only(org, notice, in_org):
    CustomFieldFactory(organization=org, key="old", label="Old field", archived=True)
    with in_org():
        form = CandidateForm(organization=org)
    assert [f for f in form.fields if f.startswith("cf_")] == ["cf_notice_weeks"]


def test_candidate_edit_invalid_custom_value_shows_error_next_to_field(
    org, recruiter_client, notice, authorisation
):
    candidate = CandidateFactory(organization=org)
    response = recruiter_client.post(
        url("edit", org, candidate.pk),
        {
            "first_name": "Ana",
            "source": "sourced",
            "status": "active",
            "cf_notice_weeks": "soon",
            "cf_work_authorisation": "Maybe",
        },
    )
    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"cf_notice_weeks", "cf_work_authorisation"}


def test_candidate_edit_saves_custom_values(org, recruiter_client, notice, authorisation):
    candidate = CandidateFactory(organization=org)
    response = recruiter_client.post(
        url("edit", org, candidate.pk),
        {
            "first_name": "Ana",
            "source": "sourced",
            "status": "active",
            "cf_notice_weeks": "4",
            "cf_work_authorisation": "Citizen",
        },
    )
    assert response.status_code == 302
    candidate.refresh_from_db()
    assert candidate.custom_fields == {"notice_weeks": 4, "work_authorisation": "Citizen"}
    page = recruiter_client.get(url("detail", org, candidate.pk)).content.decode()
    assert "Notice period (weeks)" in page and "Citizen" in page


# --- settings views ----------------------------------------------------------------------


def test_field_list_shows_fields_to_admins(org, admin_client, notice):
    response = admin_client.get(url("fields", org))
    body = response.content.decode()
    assert response.status_code == 200
    assert "Notice period (weeks)" in body
    assert "notice_weeks" in body


def test_field_list_empty_state(org, admin_client):
    response = admin_client.get(url("fields", org))
    assert "No custom fields yet" in response.content.decode()


def test_field_list_query_count_is_constant(org, admin_client):
    counts = []
    for total in (1, 3):
        with scopes_disabled():
            CustomField.objects.filter(organization=org).delete()
        for _ in range(total):
            CustomFieldFactory(organization=org, field_type="choice", choices=["a", "b"])
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(url("fields", org)).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


@pytest.mark.parametrize("client_name", ["recruiter_client", "viewer_client"])
def test_field_pages_need_an_admin(request, org, notice, client_name):
    client = request.getfixturevalue(client_name)
    assert client.get(url("fields", org)).status_code == 403
    assert client.get(url("field_add", org)).status_code == 403
    assert (
        client.post(url("field_add", org), {"label": "X", "field_type": "text"}).status_code == 403
    )
    assert client.get(url("field_edit", org, notice.pk)).status_code == 403
    assert client.post(url("field_archive", org, notice.pk)).status_code == 403


def test_field_pages_anonymous_go_to_login(org, client, notice):
    for target in (url("fields", org), url("field_add", org), url("field_edit", org, notice.pk)):
        response = client.get(target)
        assert response.status_code == 302
        assert "/accounts/login/" in response["Location"]


def test_field_pages_other_org_get_404(org, other_org, outsider_client, notice):
    assert outsider_client.get(url("fields", org)).status_code == 404
    assert outsider_client.get(url("field_edit", other_org, notice.pk)).status_code == 404
    assert outsider_client.post(url("field_archive", other_org, notice.pk)).status_code == 404


def test_field_add_creates_a_field(org, admin_client):
    response = admin_client.post(
        url("field_add", org),
        {
            "label": "Work authorisation",
            "field_type": "choice",
            "choices": "Citizen\nVisa required",
        },
    )
    assert response.status_code == 302
    with scopes_disabled():
        field = CustomField.objects.get(organization=org)
    assert (field.key, field.choices) == ("work_authorisation", ["Citizen", "Visa required"])


def test_field_add_duplicate_key_shows_an_error(org, admin_client, notice):
    response = admin_client.post(
        url("field_add", org), {"label": "Notice", "key": "notice_weeks", "field_type": "number"}
    )
    assert response.status_code == 200
    assert list(response.context["form"].errors) == ["key"]


def test_field_add_choice_without_choices_shows_an_error(org, admin_client):
    response = admin_client.post(url("field_add", org), {"label": "Visa", "field_type": "choice"})
    assert response.status_code == 200
    assert list(response.context["form"].errors) == ["choices"]


def test_field_edit_renames_but_keeps_key_and_type(org, admin_client, notice):
    response = admin_client.post(
        url("field_edit", org, notice.pk),
        {"label": "Notice (weeks)", "field_type": "text", "key": "hacked", "position": "3"},
    )
    notice.refresh_from_db()
    assert response.status_code == 302
    assert (notice.label, notice.key, notice.field_type, notice.position) == (
        "Notice (weeks)",
        "notice_weeks",
        "number",
        3,
    )


def test_field_archive_and_restore(org, admin_client, notice):
    admin_client.post(url("field_archive", org, notice.pk), {"archived": "1"})
    notice.refresh_from_db()
    assert notice.archived is True
    admin_client.post(url("field_archive", org, notice.pk), {"archived": "0"})
    notice.refresh_from_db()
    assert notice.archived is False


def test_settings_tabs_show_custom_fields_to_admins_only(org, admin_client, recruiter_client):
    assert (
        url("fields", org) in admin_client.get(reverse("members", args=[org.slug])).content.decode()
    )
    assert (
        url("fields", org)
        not in recruiter_client.get(reverse("members", args=[org.slug])).content.decode()
    )


def test_custom_field_number_refuses_huge_exponents_at_once():
    import time

    field = CustomField(label="Notice", key="notice", field_type="number")
    started = time.monotonic()

    with pytest.raises(ValidationError) as raised:
        custom_fields.custom_field_value_clean(field=field, value="1e1000000")

    assert time.monotonic() - started < 0.5
    assert raised.value.messages == [
        "Notice: Ensure that there are no more than 15 digits in total."
    ]


@pytest.mark.parametrize(
    ("raw", "error"), [("-5", "greater than or equal to 0"), ("1e20", "digits")]
)
def test_candidate_edit_custom_number_out_of_range_shows_error_next_to_field(
    org, recruiter_client, notice, raw, error
):
    candidate = CandidateFactory(organization=org)
    response = recruiter_client.post(
        reverse("candidates:edit", args=[org.slug, candidate.pk]),
        {
            "first_name": "Ada",
            "source": "sourced",
            "status": "active",
            "cf_notice_weeks": raw,
        },
    )

    assert response.status_code == 200
    [message] = response.context["form"].errors["cf_notice_weeks"]
    assert error in message
