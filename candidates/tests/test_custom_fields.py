import datetime
import re
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_scopes import scopes_disabled

from candidates.forms import CandidateForm
from candidates.models import Candidate, CustomField
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


def test_field_add_label_of_an_existing_field_shows_an_error(org, admin_client, notice):
    response = admin_client.post(
        url("field_add", org), {"label": "notice  period (WEEKS)", "field_type": "text"}
    )
    assert response.status_code == 200
    assert response.context["form"].errors == {
        "label": ["There is already a field called “Notice period (weeks)”; choose another label."]
    }
    with scopes_disabled():
        assert CustomField.objects.filter(organization=org).count() == 1


def test_field_add_label_of_an_archived_field_is_allowed(org, admin_client, notice):
    with scopes_disabled():
        notice.archived = True
        notice.save(update_fields=["archived"])
    response = admin_client.post(
        url("field_add", org),
        {"label": "Notice period (weeks)", "key": "notice", "field_type": "number"},
    )
    assert response.status_code == 302


def test_field_edit_keeping_its_own_label_is_allowed(org, admin_client, notice):
    response = admin_client.post(
        url("field_edit", org, notice.pk), {"label": "Notice period (weeks)", "position": "2"}
    )
    assert response.status_code == 302


def test_field_edit_label_of_another_field_shows_an_error(org, admin_client, notice, authorisation):
    response = admin_client.post(
        url("field_edit", org, notice.pk), {"label": "Work authorisation", "position": "2"}
    )
    assert response.status_code == 200
    assert list(response.context["form"].errors) == ["label"]


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


# --- a number field's minimum and maximum -------------------------------------------------


@pytest.fixture
def years(org):
    return CustomFieldFactory(
        organization=org,
        key="years",
        label="Years of experience",
        field_type="number",
        min_value=Decimal("1"),
        max_value=Decimal("60"),
    )


def _profile(**custom):
    return {"first_name": "Ada", "source": "sourced", "status": "active", **custom}


@pytest.mark.parametrize(
    ("raw", "stored"), [("1", 1), ("60", 60), ("60.0000", 60), ("2.5", 2.5), ("", None)]
)
def test_custom_field_value_clean_accepts_values_inside_the_limits(raw, stored):
    field = CustomField(
        label="Years", key="years", field_type="number", min_value=Decimal("1"), max_value=60
    )
    assert custom_fields.custom_field_value_clean(field=field, value=raw) == stored


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("61", "Years: at most 60."),
        ("60.0001", "Years: at most 60."),
        ("0.5", "Years: at least 1."),
    ],
)
def test_custom_field_value_clean_refuses_values_outside_the_limits_naming_them(raw, message):
    field = CustomField(
        label="Years",
        key="years",
        field_type="number",
        min_value=Decimal("1.0000"),
        max_value=Decimal("60.0000"),
    )
    with pytest.raises(ValidationError) as error:
        custom_fields.custom_field_value_clean(field=field, value=raw)
    assert error.value.messages == [message]


def test_custom_field_create_keeps_limits_of_number_fields_only(org, in_org):
    with in_org():
        number = custom_fields.custom_field_create(
            organization=org, label="Years", field_type="number", min_value="0", max_value="60"
        )
        text = custom_fields.custom_field_create(
            organization=org, label="Notes", field_type="text", min_value="0", max_value="60"
        )
    number.refresh_from_db()
    text.refresh_from_db()
    assert (number.min_value, number.max_value) == (Decimal("0"), Decimal("60"))
    assert (text.min_value, text.max_value) == (None, None)


@pytest.mark.parametrize(
    ("low", "high", "errors"),
    [
        ("61", "60", {"max_value": ["The maximum cannot be lower than the minimum (61)."]}),
        ("-1", "", {"min_value": ["Enter 0 or more: values are never negative."]}),
        ("", "soon", {"max_value": ["Enter a number."]}),
    ],
)
def test_custom_field_create_refuses_impossible_limits(org, in_org, low, high, errors):
    with in_org(), pytest.raises(ValidationError) as error:
        custom_fields.custom_field_create(
            organization=org, label="Years", field_type="number", min_value=low, max_value=high
        )
    assert error.value.message_dict == errors


def test_field_add_number_field_with_limits(org, admin_client):
    response = admin_client.post(
        url("field_add", org),
        {
            "label": "Years of experience",
            "field_type": "number",
            "min_value": "0",
            "max_value": "60",
        },
    )
    assert response.status_code == 302
    with scopes_disabled():
        field = CustomField.objects.get(organization=org)
    assert (field.min_value, field.max_value) == (Decimal("0"), Decimal("60"))
    assert "From 0 to 60" in admin_client.get(url("fields", org)).content.decode()


def test_field_add_minimum_above_maximum_is_an_error_next_to_the_maximum(org, admin_client):
    response = admin_client.post(
        url("field_add", org),
        {"label": "Years", "field_type": "number", "min_value": "60", "max_value": "10"},
    )
    assert response.status_code == 200
    assert response.context["form"].errors == {
        "max_value": ["The maximum cannot be lower than the minimum (60)."]
    }
    with scopes_disabled():
        assert not CustomField.objects.filter(organization=org).exists()


def test_field_add_ignores_limits_typed_for_another_type(org, admin_client):
    response = admin_client.post(
        url("field_add", org),
        {"label": "Notes", "field_type": "text", "min_value": "60", "max_value": "oops"},
    )
    assert response.status_code == 302
    with scopes_disabled():
        field = CustomField.objects.get(organization=org)
    assert (field.field_type, field.min_value, field.max_value) == ("text", None, None)


def test_field_add_page_shows_the_limits_as_a_number_fields_part(org, admin_client):
    body = admin_client.get(url("field_add", org)).content.decode()
    assert 'data-show-when="field_type=number"' in body
    assert 'name="min_value"' in body and 'name="max_value"' in body


def test_field_edit_shows_limits_for_number_fields_only(org, admin_client, years, authorisation):
    number_page = admin_client.get(url("field_edit", org, years.pk)).content.decode()
    choice_page = admin_client.get(url("field_edit", org, authorisation.pk)).content.decode()
    assert 'name="max_value"' in number_page and 'value="60"' in number_page
    assert 'name="min_value"' not in choice_page and 'name="max_value"' not in choice_page


def test_field_edit_changes_and_removes_limits(org, admin_client, years):
    response = admin_client.post(
        url("field_edit", org, years.pk),
        {"label": years.label, "min_value": "", "max_value": "40.5"},
    )
    assert response.status_code == 302
    years.refresh_from_db()
    assert (years.min_value, years.max_value) == (None, Decimal("40.5"))


def test_field_edit_minimum_above_maximum_is_an_error_and_keeps_the_limits(
    org, admin_client, years
):
    response = admin_client.post(
        url("field_edit", org, years.pk),
        {"label": years.label, "min_value": "50", "max_value": "40"},
    )
    assert response.status_code == 200
    assert list(response.context["form"].errors) == ["max_value"]
    years.refresh_from_db()
    assert (years.min_value, years.max_value) == (Decimal("1"), Decimal("60"))


@pytest.mark.parametrize(("raw", "message"), [("61", "At most 60."), ("0", "At least 1.")])
def test_candidate_edit_refuses_a_number_outside_the_limits_naming_the_limit(
    org, recruiter_client, years, raw, message
):
    candidate = CandidateFactory(organization=org, custom_fields={"years": 5})
    response = recruiter_client.post(url("edit", org, candidate.pk), _profile(cf_years=raw))
    assert response.status_code == 200
    assert response.context["form"].errors == {"cf_years": [message]}
    candidate.refresh_from_db()
    assert candidate.custom_fields == {"years": 5}


def test_candidate_new_saves_a_number_on_the_limit(org, recruiter_client, years):
    response = recruiter_client.post(url("new", org), _profile(cf_years="60"))
    assert response.status_code == 302
    with scopes_disabled():
        assert Candidate.objects.get(organization=org).custom_fields == {"years": 60}


def test_candidate_form_number_input_carries_the_limits(org, recruiter_client, years):
    body = recruiter_client.get(url("new", org)).content.decode()
    [number_input] = re.findall(r'<input[^>]*name="cf_years"[^>]*>', body)
    assert 'type="number"' in number_input
    assert 'min="1"' in number_input and 'max="60"' in number_input
    assert "From 1 to 60." in body


def test_candidate_edit_flags_a_stored_value_outside_new_limits(org, recruiter_client, years):
    candidate = CandidateFactory(organization=org, custom_fields={"years": 75})
    page = recruiter_client.get(url("edit", org, candidate.pk)).content.decode()
    assert (
        "The stored value 75 is no longer allowed (at most 60): correct or clear it to save "
        "the profile." in page
    )
    # Saving it unchanged is refused; clearing it saves.
    response = recruiter_client.post(url("edit", org, candidate.pk), _profile(cf_years="75"))
    assert response.context["form"].errors == {"cf_years": ["At most 60."]}
    response = recruiter_client.post(url("edit", org, candidate.pk), _profile(cf_years=""))
    assert response.status_code == 302
    candidate.refresh_from_db()
    assert candidate.custom_fields == {}


def test_candidate_update_refuses_a_number_outside_the_limits(org, recruiter_user, years, in_org):
    candidate = CandidateFactory(organization=org)
    with in_org(), pytest.raises(ValidationError) as error:
        profiles.candidate_update(
            candidate=candidate, actor=recruiter_user, custom_fields={"years": "61"}
        )
    assert error.value.message_dict == {"custom_fields": ["Years of experience: at most 60."]}


# --- keys with "__" (a nested path to Django's JSON lookups) --------------------------------


@pytest.mark.parametrize("key", ["notice__weeks", "a___b"])
def test_field_add_key_with_a_double_underscore_is_an_error_next_to_the_key(org, admin_client, key):
    response = admin_client.post(
        url("field_add", org), {"label": "Notice weeks", "key": key, "field_type": "number"}
    )

    assert response.status_code == 200
    assert response.context["form"].errors == {
        "key": ["Use single underscores only: two in a row (“__”) are not allowed."]
    }
    with scopes_disabled():
        assert not CustomField.objects.filter(organization=org).exists()


def test_custom_field_create_derives_a_key_without_double_underscores(org, in_org):
    with in_org():
        field = custom_fields.custom_field_create(
            organization=org, label="Notice _ weeks", field_type="number"
        )
    assert field.key == "notice_weeks"


def test_list_number_filter_on_an_existing_key_with_a_double_underscore(org, recruiter_client):
    # A field created before such keys were refused.
    CustomFieldFactory(organization=org, key="notice__weeks", label="Notice", field_type="number")
    four = CandidateFactory(organization=org, custom_fields={"notice__weeks": 4})
    twelve = CandidateFactory(organization=org, custom_fields={"notice__weeks": 12})
    CandidateFactory(organization=org, custom_fields={"notice": {"weeks": 4}})
    CandidateFactory(organization=org, custom_fields={})

    def ids(params):
        response = recruiter_client.get(url("list", org), params)
        return sorted(candidate.pk for candidate in response.context["page"].rows)

    assert ids({"cf_notice__weeks_min": "1"}) == sorted([four.pk, twelve.pk])
    assert ids({"cf_notice__weeks_max": "8"}) == [four.pk]


# --- a choice removed after candidates were given it ------------------------------------------


def test_candidate_edit_keeps_a_stored_choice_the_field_no_longer_offers(
    org, recruiter_client, authorisation
):
    candidate = CandidateFactory(
        organization=org, first_name="Ana", custom_fields={"work_authorisation": "Remote"}
    )

    page = recruiter_client.get(url("edit", org, candidate.pk)).content.decode()
    # What the browser sends back: every field as the page shows it, the first name edited.
    response = recruiter_client.post(
        url("edit", org, candidate.pk),
        _profile(first_name="Anna", cf_work_authorisation="Remote"),
    )

    assert re.search(r'<option value="Remote" selected>Remote \(no longer offered\)</option>', page)
    assert "“Remote” is no longer one of this field&#x27;s choices" in page
    assert response.status_code == 302
    candidate.refresh_from_db()
    assert (candidate.first_name, candidate.custom_fields) == (
        "Anna",
        {"work_authorisation": "Remote"},
    )


def test_candidate_edit_replaces_or_clears_a_choice_no_longer_offered(
    org, recruiter_client, authorisation
):
    replaced = CandidateFactory(organization=org, custom_fields={"work_authorisation": "Remote"})
    cleared = CandidateFactory(organization=org, custom_fields={"work_authorisation": "Remote"})

    recruiter_client.post(url("edit", org, replaced.pk), _profile(cf_work_authorisation="Citizen"))
    recruiter_client.post(url("edit", org, cleared.pk), _profile(cf_work_authorisation=""))

    replaced.refresh_from_db()
    cleared.refresh_from_db()
    assert (replaced.custom_fields, cleared.custom_fields) == (
        {"work_authorisation": "Citizen"},
        {},
    )


def test_candidate_edit_refuses_another_choice_the_field_does_not_offer(
    org, recruiter_client, authorisation
):
    candidate = CandidateFactory(organization=org, custom_fields={"work_authorisation": "Remote"})

    response = recruiter_client.post(
        url("edit", org, candidate.pk), _profile(cf_work_authorisation="Hybrid")
    )

    assert list(response.context["form"].errors) == ["cf_work_authorisation"]
