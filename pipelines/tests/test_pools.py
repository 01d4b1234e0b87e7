import html
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_scopes import scopes_disabled

from candidates.models import Activity, Candidate, SavedSearch
from crm.services import organization_create
from pipelines import services
from pipelines.models import Pool, PoolMembership, Stage
from pipelines.services import DEFAULT_STAGES
from pipelines.tests.factories import PoolFactory
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def url(name, org, **kwargs):
    return reverse(f"pipelines:{name}", kwargs={"org_slug": org.slug, **kwargs})


# --- list and visibility ---


def test_pool_list_shows_sizes_growth_and_stages(
    recruiter_client, org, pool, stages, make_candidates, add, in_org
):
    old_timers = make_candidates(2)
    add(pool, old_timers + make_candidates(3))
    with in_org():
        PoolMembership.objects.filter(pool=pool, candidate__in=old_timers).update(
            added_at=timezone.now() - timedelta(days=40)
        )
        moved = PoolMembership.objects.filter(pool=pool).exclude(candidate__in=old_timers).first()
        services.membership_move(membership=moved, to_stage=stages[2], actor=None)

    response = recruiter_client.get(url("pool_list", org))

    assert response.status_code == 200
    body = " ".join(response.content.decode().split())
    assert "Backend engineers" in body
    (row,) = response.context["rows"]
    assert (row.size, row.recent) == (5, 3)
    assert [(stage.name, count) for stage, count in row.breakdown][:3] == [
        ("New", 4),
        ("Contacted", 0),
        ("Engaged", 1),
    ]
    assert "3 in 30 days" in body


def test_pool_list_says_unassigned_for_a_pool_without_owner(recruiter_client, org, stages):
    PoolFactory(organization=org, owner=None, name="Orphans")

    body = " ".join(recruiter_client.get(url("pool_list", org)).content.decode().split())

    assert "Unassigned" in body
    assert "No owner" not in body


def test_pool_list_hides_other_peoples_private_pools(
    recruiter_client, admin_client, org, recruiter_user, admin_user, stages
):
    PoolFactory(organization=org, owner=admin_user, name="Admin secrets", visibility="owner")
    PoolFactory(organization=org, owner=recruiter_user, name="Rex private", visibility="owner")

    recruiter_body = recruiter_client.get(url("pool_list", org)).content.decode()
    admin_body = admin_client.get(url("pool_list", org)).content.decode()

    assert "Rex private" in recruiter_body and "Admin secrets" not in recruiter_body
    assert "Admin secrets" in admin_body and "Rex private" not in admin_body


def test_pool_board_of_someone_elses_private_pool_is_404(admin_client, org, recruiter_user, stages):
    private = PoolFactory(organization=org, owner=recruiter_user, visibility="owner")

    response = admin_client.get(url("pool_board", org, pool_id=private.pk))

    assert response.status_code == 404


def test_pool_list_empty_state(viewer_client, org):
    response = viewer_client.get(url("pool_list", org))

    assert response.status_code == 200
    assert "No talent pools yet" in response.content.decode()


def test_pool_list_anonymous_is_sent_to_login(client, org):
    response = client.get(url("pool_list", org))

    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_pool_list_other_org_is_404(outsider_client, org):
    assert outsider_client.get(url("pool_list", org)).status_code == 404


def _count_pool_list_queries(client, org):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url("pool_list", org))
    assert response.status_code == 200
    return len(queries)


def test_pool_list_query_count_does_not_grow_with_pools(
    recruiter_client, org, recruiter_user, stages, make_candidates, add
):
    first = PoolFactory(organization=org, owner=recruiter_user)
    add(first, make_candidates(2))
    one = _count_pool_list_queries(recruiter_client, org)
    for _ in range(2):
        extra = PoolFactory(organization=org, owner=recruiter_user)
        add(extra, make_candidates(2))

    three = _count_pool_list_queries(recruiter_client, org)

    assert one == three


# --- create, edit, delete ---


def test_pool_create_static(recruiter_client, org, recruiter_user, stages):
    response = recruiter_client.post(
        url("pool_create", org),
        {
            "name": "Data people",
            "description": "",
            "kind": "static",
            "visibility": "organization",
            "color": "teal",
            "icon": "gem",
        },
    )

    with scopes_disabled():
        pool = Pool.objects.get(name="Data people")
    assert response.status_code == 302
    assert response["Location"] == url("pool_board", org, pool_id=pool.pk)
    assert (pool.owner, pool.kind, pool.color) == (recruiter_user, "static", "teal")


def test_pool_form_rule_picker_is_the_smart_pools_part(recruiter_client, org, stages):
    """Without JavaScript it shows, titled for smart pools; rapport.js hides it unless Smart
    is chosen (data-show-when)."""
    from crm.tests.markup import attributes, elements, text

    html = recruiter_client.get(url("pool_create", org)).content.decode()

    (part,) = [e for e in elements(html) if "data-show-when" in attributes(e)]
    assert (part.name, attributes(part)["data-show-when"]) == ("fieldset", "kind=smart")
    assert text(next(e for e in elements(part) if e.name == "legend")) == "For a smart pool"
    assert any(attributes(e).get("id") == "id_saved_search" for e in elements(part))


def test_pool_create_smart_needs_a_saved_search(recruiter_client, org, stages):
    response = recruiter_client.post(
        url("pool_create", org),
        {
            "name": "Smart",
            "kind": "smart",
            "visibility": "organization",
            "color": "blue",
            "icon": "star",
        },
    )

    assert response.status_code == 200
    assert "A smart pool needs a saved search." in response.content.decode()


def test_pool_create_rejects_another_users_saved_search(recruiter_client, org, admin_user, stages):
    with scopes_disabled():
        theirs = SavedSearch.objects.create(
            organization=org, owner=admin_user, name="Theirs", query={}
        )

    response = recruiter_client.post(
        url("pool_create", org),
        {
            "name": "Smart",
            "kind": "smart",
            "saved_search": theirs.pk,
            "visibility": "organization",
            "color": "blue",
            "icon": "star",
        },
    )

    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()


def test_pool_create_viewer_is_403(viewer_client, org):
    assert viewer_client.get(url("pool_create", org)).status_code == 403


def test_pool_edit_by_owner(recruiter_client, org, pool):
    response = recruiter_client.post(
        url("pool_edit", org, pool_id=pool.pk),
        {
            "name": "Renamed",
            "description": "Better",
            "kind": "static",
            "visibility": "owner",
            "color": "red",
            "icon": "star",
        },
    )

    pool.refresh_from_db()
    assert response.status_code == 302
    assert (pool.name, pool.visibility, pool.color) == ("Renamed", "owner", "red")


def test_pool_edit_by_another_recruiter_is_403(client, org, pool):
    from crm.models import Role
    from tests.factories import MembershipFactory

    other = UserFactory()
    MembershipFactory(organization=org, user=other, role=Role.RECRUITER)
    client.force_login(other)

    assert client.get(url("pool_edit", org, pool_id=pool.pk)).status_code == 403


# --- static membership ---


def test_pool_add_candidates_is_idempotent_and_records_timeline(
    org, pool, make_candidates, add, recruiter_user, unscoped
):
    candidates = make_candidates(3)

    first = add(pool, candidates[:2], recruiter_user)
    second = add(pool, candidates, recruiter_user)

    assert (first, second) == (2, 1)
    with unscoped():
        assert PoolMembership.objects.filter(pool=pool).count() == 3
        assert Activity.objects.filter(kind="pool_added").count() == 3
        first_stage = PoolMembership.objects.filter(pool=pool).first().stage
    assert first_stage.name == "New"


def test_pool_add_candidates_ignores_other_organisations_ids(org, other_org, pool, add, unscoped):
    from candidates.tests.factories import CandidateFactory

    foreign = CandidateFactory(organization=other_org)

    added = add(pool, [foreign])

    assert added == 0


def test_pool_add_view_with_ids(recruiter_client, org, pool, make_candidates, unscoped):
    candidates = make_candidates(2)

    response = recruiter_client.post(
        url("pool_add", org), {"pool": pool.pk, "candidate": [c.pk for c in candidates]}
    )

    assert response.status_code == 302
    assert response["Location"] == url("pool_board", org, pool_id=pool.pk)
    with unscoped():
        assert PoolMembership.objects.filter(pool=pool).count() == 2


def test_pool_add_view_with_all_matching_query(
    recruiter_client, org, pool, make_candidates, unscoped
):
    make_candidates(3, city="Lisbon")
    make_candidates(2, city="Porto")

    page = recruiter_client.get(url("pool_add", org), {"query": "city=Lisbon"})
    response = recruiter_client.post(
        url("pool_add", org), {"pool": pool.pk, "query": "city=Lisbon"}
    )

    assert "All 3 candidates matching your search" in page.content.decode()
    assert response.status_code == 302
    with unscoped():
        cities = set(
            PoolMembership.objects.filter(pool=pool).values_list("candidate__city", flat=True)
        )
        assert PoolMembership.objects.filter(pool=pool).count() == 3
    assert cities == {"Lisbon"}


def _confirmation_form(response) -> dict:
    """The hidden fields of the add-to-pool page's form, as a browser would send them back."""
    form = response.content.decode().split('class="card-body')[1].split("</form>")[0]
    fields = re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form)
    return {name: html.unescape(value) for name, value in fields if name != "csrfmiddlewaretoken"}


def _members(pool) -> set[int]:
    with scopes_disabled():
        return set(PoolMembership.objects.filter(pool=pool).values_list("candidate", flat=True))


def test_pool_add_all_matching_leaves_out_candidates_added_after_confirming(
    recruiter_client, org, pool, make_candidates
):
    confirmed = make_candidates(2, city="Lisbon")
    page = recruiter_client.get(url("pool_add", org), {"query": "city=Lisbon"})
    assert "All 2 candidates matching your search will be added" in page.content.decode()
    # While the recruiter picks the pool, an import adds someone in Lisbon.
    make_candidates(1, city="Lisbon")

    response = recruiter_client.post(
        url("pool_add", org), {**_confirmation_form(page), "pool": pool.pk}, follow=True
    )

    assert _members(pool) == {c.pk for c in confirmed}
    body = response.content.decode()
    assert "2 candidates added to “Backend engineers”." in body
    assert "confirmed" not in body


def test_pool_add_from_a_page_without_the_bound_adds_everyone_matching_at_the_post(
    recruiter_client, org, pool, make_candidates
):
    # A page shown before the bound was carried sends only the query: bounded when posted.
    lisbon = make_candidates(2, city="Lisbon")
    recruiter_client.get(url("pool_add", org), {"query": "city=Lisbon"})
    lisbon += make_candidates(1, city="Lisbon")

    response = recruiter_client.post(
        url("pool_add", org), {"pool": pool.pk, "query": "city=Lisbon"}, follow=True
    )

    assert _members(pool) == {c.pk for c in lisbon}
    assert "3 candidates added to “Backend engineers”." in response.content.decode()


def test_pool_add_says_when_fewer_were_found_than_confirmed(
    recruiter_client, org, pool, make_candidates
):
    lisbon = make_candidates(3, city="Lisbon")
    page = recruiter_client.get(url("pool_add", org), {"query": "city=Lisbon"})
    with scopes_disabled():
        Candidate.objects.filter(pk=lisbon[0].pk).update(city="Porto")

    response = recruiter_client.post(
        url("pool_add", org), {**_confirmation_form(page), "pool": pool.pk}, follow=True
    )

    assert _members(pool) == {lisbon[1].pk, lisbon[2].pk}
    assert (
        "Found 2 of the 3 confirmed: the other 1 had been deleted or no longer matched in the "
        "meantime." in response.content.decode()
    )


def test_pool_add_says_when_more_were_found_than_confirmed(
    recruiter_client, org, pool, make_candidates
):
    lisbon = make_candidates(2, city="Lisbon")
    (porto,) = make_candidates(1, city="Porto")
    page = recruiter_client.get(url("pool_add", org), {"query": "city=Lisbon"})
    # Someone who existed when the page counted moves to Lisbon: they match, and are added.
    with scopes_disabled():
        Candidate.objects.filter(pk=porto.pk).update(city="Lisbon")

    response = recruiter_client.post(
        url("pool_add", org), {**_confirmation_form(page), "pool": pool.pk}, follow=True
    )

    assert _members(pool) == {lisbon[0].pk, lisbon[1].pk, porto.pk}
    assert (
        "Found 3, 1 more than the 2 confirmed: profiles edited after the confirmation had come "
        "to match and were included." in response.content.decode()
    )


def test_pool_add_of_ticked_candidates_says_when_one_was_deleted(
    recruiter_client, org, pool, make_candidates
):
    ticked = make_candidates(2)
    page = recruiter_client.get(url("pool_add", org), {"candidate": [c.pk for c in ticked]})
    with scopes_disabled():
        Candidate.objects.filter(pk=ticked[0].pk).delete()

    response = recruiter_client.post(
        url("pool_add", org),
        {**_confirmation_form(page), "candidate": [c.pk for c in ticked], "pool": pool.pk},
        follow=True,
    )

    assert _members(pool) == {ticked[1].pk}
    body = response.content.decode()
    assert "1 candidate added" in body
    assert "Found 1 of the 2 confirmed: the other 1 had been deleted or merged" in body


def test_pool_add_view_without_selection_shows_error(recruiter_client, org, pool):
    response = recruiter_client.post(url("pool_add", org), {"pool": pool.pk})

    assert response.status_code == 200
    assert "Select some candidates first." in response.content.decode()


def test_pool_add_view_viewer_is_403(viewer_client, org, pool):
    assert viewer_client.post(url("pool_add", org), {"pool": pool.pk}).status_code == 403


def test_candidate_add_to_pool_from_profile(recruiter_client, org, pool, make_candidates, unscoped):
    (candidate,) = make_candidates(1)

    response = recruiter_client.post(
        url("candidate_add_to_pool", org, candidate_id=candidate.pk), {"pool": pool.pk}
    )

    assert response.status_code == 302
    with unscoped():
        assert PoolMembership.objects.filter(pool=pool, candidate=candidate).exists()


def test_candidate_pools_include_uses_two_queries(
    rf, org, pool, recruiter_user, make_candidates, add, in_org
):
    from django.template import Context
    from django.template.loader import get_template

    from crm.models import Membership

    (candidate,) = make_candidates(1)
    add(pool, [candidate])
    PoolFactory(organization=org, owner=recruiter_user, name="Another pool")
    request = rf.get("/")
    request.user = recruiter_user
    with in_org():
        membership = Membership.objects.get(user=recruiter_user)
        with CaptureQueriesContext(connection) as queries:
            # Without the site's context processors: only the include's own queries count.
            html = get_template("pipelines/includes/candidate_pools.html").template.render(
                Context(
                    {
                        "candidate": candidate,
                        "organization": org,
                        "membership": membership,
                        "request": request,
                    }
                )
            )

    assert len(queries) == 2
    assert "Backend engineers" in html and "Another pool" in html


def test_card_remove_records_timeline(recruiter_client, org, pool, make_candidates, add, unscoped):
    (candidate,) = make_candidates(1)
    add(pool, [candidate])
    with unscoped():
        membership = PoolMembership.objects.get(pool=pool)

    response = recruiter_client.post(
        url("card_remove", org, pool_id=pool.pk, pool_membership_id=membership.pk)
    )

    assert response.status_code == 302
    with unscoped():
        assert not PoolMembership.objects.filter(pk=membership.pk).exists()
        assert Activity.objects.filter(candidate=candidate, kind="pool_removed").count() == 1


# --- default stages ---


def test_new_organisation_gets_default_stages(db, unscoped):
    user = UserFactory()

    organization = organization_create(user=user, name="Fresh", slug="fresh")

    with unscoped():
        names = list(
            Stage.objects.filter(organization=organization, pool__isnull=True).values_list(
                "name", flat=True
            )
        )
    assert names == [name for name, _ in DEFAULT_STAGES]


def test_existing_organisation_gets_default_stages_lazily(recruiter_client, org, unscoped):
    with unscoped():
        assert not Stage.objects.filter(organization=org).exists()

    recruiter_client.get(url("pool_list", org))
    PoolFactory(organization=org)
    recruiter_client.get(url("pool_list", org))

    with unscoped():
        assert Stage.objects.filter(organization=org, pool__isnull=True).count() == len(
            DEFAULT_STAGES
        )


def test_candidate_list_bulk_menu_hands_the_selection_to_pool_add(
    recruiter_client, org, pool, make_candidates
):
    first, second = make_candidates(2)
    list_page = recruiter_client.get(reverse("candidates:list", args=[org.slug]))
    assert 'value="pool_add"' in list_page.content.decode()

    response = recruiter_client.get(
        reverse("candidates:bulk", args=[org.slug]),
        {"action": "pool_add", "ids": [first.pk, second.pk], "query": ""},
    )

    assert response.status_code == 302
    assert response["Location"] == (
        reverse("pipelines:pool_add", args=[org.slug])
        + f"?candidate={first.pk}&candidate={second.pk}"
    )
    choose = recruiter_client.get(response["Location"])
    assert choose.status_code == 200
    assert pool.name in choose.content.decode()


def test_candidate_list_bulk_all_matching_hands_over_the_query(recruiter_client, org, pool):
    response = recruiter_client.get(
        reverse("candidates:bulk", args=[org.slug]),
        {"action": "pool_add", "select_all": "1", "query": "city=Lisbon"},
    )

    assert response.status_code == 302
    assert response["Location"].endswith("?query=city%3DLisbon")


def test_an_import_summary_offers_its_candidates_to_a_pool(
    recruiter_client, recruiter_user, org, pool, make_candidates, unscoped
):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django_scopes import scope

    from candidates.importing.reading import inspect_file
    from candidates.services import imports

    (bystander,) = make_candidates(1, first_name="Not", last_name="Imported")
    data = b"First name,Last name,Email\nIra,One,ira@example.com\nJo,Two,jo@example.com\n"
    upload = SimpleUploadedFile("people.csv", data)
    info = inspect_file(upload)
    with scope(organization=org):
        job = imports.import_create(organization=org, user=recruiter_user, upload=upload, info=info)
        job = imports.import_configure(
            job=job, mapping=job.params["mapping"], options=job.params["options"]
        )
        imports.import_run(job=job)

    summary = recruiter_client.get(reverse("candidates:job_detail", args=[org.slug, job.pk]))
    html = summary.content.decode()
    assert f"?import_job={job.pk}" in html
    add_url = reverse("pipelines:pool_add", args=[org.slug]) + f"?query=import_job%3D{job.pk}"
    assert add_url in html

    listed = recruiter_client.get(
        reverse("candidates:list", args=[org.slug]), {"import_job": job.pk}
    ).content.decode()
    assert "Ira One" in listed and "Jo Two" in listed
    assert "Not Imported" not in listed

    choose = recruiter_client.get(add_url)
    assert "All 2 candidates matching your search will be added" in choose.content.decode()
    recruiter_client.post(
        reverse("pipelines:pool_add", args=[org.slug]),
        {"pool": pool.pk, "query": f"import_job={job.pk}"},
    )
    with unscoped():
        names = set(
            PoolMembership.objects.filter(pool=pool).values_list("candidate__first_name", flat=True)
        )
    assert names == {"Ira", "Jo"}
    assert bystander.first_name not in names


def test_pool_list_tells_a_viewer_an_empty_pool_is_empty_without_asking_them_to_add(
    viewer_client, recruiter_client, org, pool
):
    viewer = viewer_client.get(url("pool_list", org)).content.decode()
    recruiter = recruiter_client.get(url("pool_list", org)).content.decode()

    assert "No one is in this pool." in viewer
    assert "add candidates from the candidate list" not in viewer
    assert "add candidates from the candidate list" in recruiter
