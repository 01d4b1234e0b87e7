import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_scopes import scopes_disabled

from candidates.models import Activity, Candidate, SavedSearch
from pipelines import services
from pipelines.models import Pool, PoolMembership
from pipelines.tasks import smart_pool_refresh_task
from pipelines.tests.factories import PoolFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def saved_search(org, recruiter_user):
    with scopes_disabled():
        return SavedSearch.objects.create(
            organization=org, owner=recruiter_user, name="Lisbon", query={"city": ["Lisbon"]}
        )


@pytest.fixture
def smart_pool(org, recruiter_user, saved_search, stages):
    return PoolFactory(
        organization=org,
        owner=recruiter_user,
        name="Lisbon people",
        kind=Pool.Kind.SMART,
        saved_search=saved_search,
    )


def _members(pool):
    with scopes_disabled():
        return set(PoolMembership.objects.filter(pool=pool).values_list("candidate_id", flat=True))


def test_smart_pool_refresh_task_materialises_matching_candidates(
    org, smart_pool, make_candidates, unscoped
):
    lisbon = make_candidates(3, city="Lisbon")
    make_candidates(2, city="Porto")

    result = smart_pool_refresh_task.apply(
        kwargs={"organization_id": org.pk, "pool_id": smart_pool.pk}
    ).get()

    assert result == {"entered": 3, "left": 0}
    assert _members(smart_pool) == {c.pk for c in lisbon}
    with unscoped():
        assert Activity.objects.filter(kind="pool_added").count() == 3
        assert set(PoolMembership.objects.values_list("source", flat=True)) == {"smart"}
        assert Pool.objects.get(pk=smart_pool.pk).refreshed_at is not None


def test_smart_pool_of_a_text_search_holds_every_match_not_the_lists_ranked_few(
    org, recruiter_user, stages, make_candidates, settings
):
    # The list ranks only the first CANDIDATE_SEARCH_RANK_LIMIT matches of a search; a smart
    # pool is everyone its saved search finds (and re-evaluating one member keeps them in).
    settings.CANDIDATE_SEARCH_RANK_LIMIT = 2
    erlang = make_candidates(4, headline="Erlang developer")
    make_candidates(2, headline="Pastry chef")
    with scopes_disabled():
        search = SavedSearch.objects.create(
            organization=org, owner=recruiter_user, name="Erlang", query={"q": ["erlang"]}
        )
    pool = PoolFactory(
        organization=org, owner=recruiter_user, kind=Pool.Kind.SMART, saved_search=search
    )

    result = smart_pool_refresh_task.apply(
        kwargs={"organization_id": org.pk, "pool_id": pool.pk}
    ).get()

    assert result == {"entered": 4, "left": 0}
    assert _members(pool) == {c.pk for c in erlang}
    with scopes_disabled():
        assert services.smart_pools_reevaluate_candidate(candidate=erlang[-1]) == {}
    assert _members(pool) == {c.pk for c in erlang}


def test_smart_pool_of_a_misspelled_name_finds_the_person(
    org, recruiter_user, stages, make_candidates
):
    (katarzyna,) = make_candidates(1, first_name="Katarzyna", last_name="Kowalski")
    make_candidates(1, first_name="Tomasz", last_name="Nowak")
    with scopes_disabled():
        search = SavedSearch.objects.create(
            organization=org, owner=recruiter_user, name="K", query={"q": ["Katarzyna Kowalsky"]}
        )
    pool = PoolFactory(
        organization=org, owner=recruiter_user, kind=Pool.Kind.SMART, saved_search=search
    )

    smart_pool_refresh_task.apply(kwargs={"organization_id": org.pk, "pool_id": pool.pk}).get()

    assert _members(pool) == {katarzyna.pk}


def test_smart_pool_rule_edit_re_evaluates(
    org, smart_pool, saved_search, make_candidates, in_org, unscoped
):
    lisbon = make_candidates(2, city="Lisbon")
    porto = make_candidates(2, city="Porto")
    with in_org():
        services.smart_pool_refresh(pool=smart_pool)
    with unscoped():
        saved_search.query = {"city": ["Porto"]}
        saved_search.save()

    with in_org():
        entered, left = services.smart_pool_refresh(pool=smart_pool)

    assert (entered, left) == (2, 2)
    assert _members(smart_pool) == {c.pk for c in porto}
    with unscoped():
        left_ids = set(
            Activity.objects.filter(kind="pool_removed").values_list("candidate_id", flat=True)
        )
    assert left_ids == {c.pk for c in lisbon}


def test_smart_pool_refresh_keeps_people_added_by_hand_and_their_stage(
    org, smart_pool, make_candidates, in_org, stages, unscoped
):
    (porto,) = make_candidates(1, city="Porto")
    (lisbon,) = make_candidates(1, city="Lisbon")
    with in_org():
        services.pool_add_candidates(pool=smart_pool, candidate_ids=[porto.pk], actor=None)
        services.smart_pool_refresh(pool=smart_pool)
        membership = PoolMembership.objects.get(pool=smart_pool, candidate=lisbon)
        services.membership_move(membership=membership, to_stage=stages[2], actor=None)

        services.smart_pool_refresh(pool=smart_pool)

        assert PoolMembership.objects.get(pk=membership.pk).stage_id == stages[2].pk
    assert _members(smart_pool) == {porto.pk, lisbon.pk}


def test_smart_pool_refresh_ignores_merged_candidates(org, smart_pool, make_candidates, in_org):
    first, second = make_candidates(2, city="Lisbon")
    with scopes_disabled():
        Candidate.objects.filter(pk=second.pk).update(merged_into=first)

    with in_org():
        services.smart_pool_refresh(pool=smart_pool)

    assert _members(smart_pool) == {first.pk}


def test_smart_pools_reevaluate_candidate_enters_and_leaves(
    org, smart_pool, make_candidates, in_org, unscoped
):
    (candidate,) = make_candidates(1, city="Porto")

    with in_org():
        assert services.smart_pools_reevaluate_candidate(candidate=candidate) == {}
        Candidate.objects.filter(pk=candidate.pk).update(city="Lisbon")
        entered = services.smart_pools_reevaluate_candidate(candidate=candidate)
        Candidate.objects.filter(pk=candidate.pk).update(city="Faro")
        left = services.smart_pools_reevaluate_candidate(candidate=candidate)

    assert entered == {smart_pool.pk: "entered"}
    assert left == {smart_pool.pk: "left"}
    with unscoped():
        kinds = list(
            Activity.objects.filter(candidate=candidate)
            .order_by("pk")
            .values_list("kind", flat=True)
        )
    assert kinds == ["pool_added", "pool_removed"]


def test_smart_pools_reevaluate_candidate_decides_in_one_query_for_all_pools(
    org, recruiter_user, saved_search, smart_pool, make_candidates, in_org
):
    PoolFactory(
        organization=org, owner=recruiter_user, kind=Pool.Kind.SMART, saved_search=saved_search
    )
    (candidate,) = make_candidates(1, city="Faro")

    with in_org(), CaptureQueriesContext(connection) as queries:
        services.smart_pools_reevaluate_candidate(candidate=candidate)

    exists_queries = [
        q for q in queries if "EXISTS" in q["sql"] and "candidates_candidate" in q["sql"]
    ]
    assert len(exists_queries) == 1


def test_smart_pool_preview_counts_matches(recruiter_client, org, saved_search, make_candidates):
    make_candidates(2, city="Lisbon")

    response = recruiter_client.get(
        reverse("pipelines:smart_pool_preview", kwargs={"org_slug": org.slug}),
        {"saved_search": saved_search.pk},
    )

    assert response.status_code == 200
    assert "finds 2 candidates now" in response.content.decode()


def test_smart_pool_preview_caps_its_count(
    recruiter_client, org, saved_search, make_candidates, monkeypatch
):
    monkeypatch.setattr("pipelines.views.SMART_PREVIEW_COUNT_CAP", 10)
    url = reverse("pipelines:smart_pool_preview", kwargs={"org_slug": org.slug})
    make_candidates(10, city="Lisbon")
    body = recruiter_client.get(url, {"saved_search": saved_search.pk}).content.decode()
    assert "finds 10 candidates now" in body
    assert "and 2 more" in body

    make_candidates(1, city="Lisbon")
    body = recruiter_client.get(url, {"saved_search": saved_search.pk}).content.decode()
    assert "finds 10+ candidates now" in body
    assert "and more</li>" in body


def test_smart_pool_preview_of_someone_elses_search_shows_nothing(
    admin_client, org, saved_search, make_candidates
):
    make_candidates(2, city="Lisbon")

    response = admin_client.get(
        reverse("pipelines:smart_pool_preview", kwargs={"org_slug": org.slug}),
        {"saved_search": saved_search.pk},
    )

    assert response.status_code == 200
    assert "finds" not in response.content.decode()


def test_smart_pool_is_not_offered_for_manual_adds(recruiter_client, org, smart_pool):
    response = recruiter_client.get(
        reverse("pipelines:pool_add", kwargs={"org_slug": org.slug}), {"candidate": "1"}
    )

    assert "Lisbon people" not in response.content.decode()


@pytest.fixture
def eager_celery():
    from crm.celery import app as celery_app

    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def test_profile_edit_moves_candidate_into_smart_pool_on_commit(
    org,
    smart_pool,
    make_candidates,
    recruiter_user,
    in_org,
    eager_celery,
    django_capture_on_commit_callbacks,
):
    from candidates.services.profiles import candidate_update

    (candidate,) = make_candidates(1, city="Porto")
    with in_org(), django_capture_on_commit_callbacks(execute=True) as callbacks:
        candidate_update(candidate=candidate, actor=recruiter_user, city="Lisbon")

    assert len(callbacks) == 1
    assert _members(smart_pool) == {candidate.pk}


def test_a_city_changed_in_the_preference_centre_moves_the_candidate_into_smart_pools(
    org, smart_pool, make_candidates, in_org, eager_celery, django_capture_on_commit_callbacks
):
    from campaigns.services.preferences import candidate_preferences_update

    (candidate,) = make_candidates(1, city="Porto")
    with in_org(), django_capture_on_commit_callbacks(execute=True):
        candidate_preferences_update(
            candidate=candidate, topics=[], pause_months=0, current_title="", city="Lisbon"
        )

    assert _members(smart_pool) == {candidate.pk}


def test_bulk_action_refreshes_smart_pools_on_commit(
    org,
    smart_pool,
    make_candidates,
    recruiter_user,
    in_org,
    eager_celery,
    django_capture_on_commit_callbacks,
):
    from candidates.services.bulk import bulk_start

    people = make_candidates(2, city="Lisbon", tags=[])
    with in_org(), django_capture_on_commit_callbacks(execute=True) as callbacks:
        bulk_start(
            organization=org,
            actor=recruiter_user,
            action="tag",
            args={"tags": ["python"]},
            selection={"ids": [c.pk for c in people]},
        )

    assert len(callbacks) == 2  # a small selection: re-evaluated one by one, no full refresh
    assert _members(smart_pool) == {c.pk for c in people}


def test_many_unnamed_changes_re_materialise_every_smart_pool_on_commit(
    org, smart_pool, make_candidates, in_org, eager_celery, django_capture_on_commit_callbacks
):
    from candidates.models import Candidate
    from candidates.signals import candidates_changed_in_bulk

    people = make_candidates(3, city="Lisbon")
    with in_org(), django_capture_on_commit_callbacks(execute=True) as callbacks:
        candidates_changed_in_bulk.send(sender=Candidate, organization=org, job=None)

    assert len(callbacks) == 1  # one refresh task for the one smart pool
    assert _members(smart_pool) == {c.pk for c in people}


# --- changing the rule ---


def test_saving_changes_to_the_saved_search_re_materialises_its_smart_pools(
    org,
    smart_pool,
    saved_search,
    make_candidates,
    recruiter_client,
    in_org,
    eager_celery,
    django_capture_on_commit_callbacks,
):
    lisbon = make_candidates(2, city="Lisbon")
    porto = make_candidates(1, city="Porto")
    with in_org():
        services.smart_pool_refresh(pool=smart_pool)
    url = reverse("candidates:saved_search_save_changes", args=[org.slug, saved_search.pk])

    with django_capture_on_commit_callbacks(execute=True):
        response = recruiter_client.post(url, {"query": "city=Porto"})

    assert response.status_code == 302
    assert _members(smart_pool) == {porto[0].pk}
    with scopes_disabled():
        left = set(
            Activity.objects.filter(kind="pool_removed").values_list("candidate_id", flat=True)
        )
    assert left == {c.pk for c in lisbon}


def test_smart_pool_preview_shows_the_rule_and_a_link_to_change_it(
    recruiter_client, org, saved_search, make_candidates
):
    make_candidates(1, city="Lisbon")

    response = recruiter_client.get(
        reverse("pipelines:smart_pool_preview", kwargs={"org_slug": org.slug}),
        {"saved_search": saved_search.pk},
    )

    body = response.content.decode()
    assert response.context["rule"] == [("City", "Lisbon")]
    assert f"?city=Lisbon&amp;editing={saved_search.pk}" in body


def test_smart_pool_preview_for_an_admin_editing_someone_elses_smart_pool(
    admin_client, org, smart_pool, saved_search, make_candidates
):
    make_candidates(3, city="Lisbon")

    response = admin_client.get(
        reverse("pipelines:smart_pool_preview", kwargs={"org_slug": org.slug}),
        {"saved_search": saved_search.pk},
    )

    assert "finds 3 candidates now" in response.content.decode()
    assert "edit_url" not in response.context  # only its owner changes a saved search


def test_smart_pool_impact_counts_who_would_join_and_leave(
    recruiter_client, org, smart_pool, saved_search, make_candidates, add, in_org
):
    lisbon = make_candidates(2, city="Lisbon", seniority="junior")
    make_candidates(3, city="Porto", seniority="senior")
    by_hand = make_candidates(1, city="Faro")
    with in_org():
        services.smart_pool_refresh(pool=smart_pool)
    add(smart_pool, by_hand)
    with scopes_disabled():
        Candidate.objects.filter(pk=lisbon[0].pk).update(seniority="senior")

    response = recruiter_client.get(
        reverse("pipelines:smart_pool_preview", kwargs={"org_slug": org.slug}),
        {"saved_search": saved_search.pk, "impact": "1", "query": "seniority=senior"},
    )

    (impact,) = response.context["impacts"]
    # Lisbon's senior stays; the three Porto seniors join; the junior from Lisbon leaves; the
    # one added by hand stays whatever the rule.
    assert (impact.pool, impact.size, impact.matching, impact.joining, impact.leaving) == (
        smart_pool,
        3,
        4,
        3,
        1,
    )
    assert "saving would bring in" in response.content.decode()


def test_smart_pool_impact_without_a_change_reads_as_one_sentence(
    recruiter_client, org, smart_pool, saved_search, make_candidates, in_org
):
    from crm.tests.markup import attributes, elements, text

    make_candidates(2, city="Lisbon")
    with in_org():
        services.smart_pool_refresh(pool=smart_pool)

    response = recruiter_client.get(
        reverse("pipelines:smart_pool_preview", kwargs={"org_slug": org.slug}),
        {"saved_search": saved_search.pk, "impact": "1", "query": "city=Lisbon"},
    )

    [item] = [element for element in elements(response.content.decode()) if element.name == "li"]
    assert text(item) == "Smart pool Lisbon people (2 now): no change to its members."
    # Running text, one space after the colon: not a flex row whose gap showed as two.
    assert "class" not in attributes(item)


def test_smart_pool_impact_of_someone_elses_private_pool_is_not_shown(
    admin_client, org, recruiter_user, saved_search, make_candidates
):
    PoolFactory(
        organization=org,
        owner=recruiter_user,
        kind=Pool.Kind.SMART,
        saved_search=saved_search,
        visibility=Pool.Visibility.OWNER,
    )

    response = admin_client.get(
        reverse("pipelines:smart_pool_preview", kwargs={"org_slug": org.slug}),
        {"saved_search": saved_search.pk, "impact": "1", "query": "city=Porto"},
    )

    assert response.status_code == 200
    assert response.content.decode().strip() == ""


def test_candidate_list_banner_loads_the_smart_pool_impact(
    recruiter_client, org, smart_pool, saved_search
):
    response = recruiter_client.get(
        reverse("candidates:list", kwargs={"org_slug": org.slug}),
        {"city": "Porto", "editing": saved_search.pk},
    )

    body = response.content.decode()
    assert "smart-impact" in body
    assert f"saved_search={saved_search.pk}&amp;query=city%3DPorto&amp;impact=1" in body


def test_smart_pool_impact_caps_its_counts(
    recruiter_client, org, smart_pool, saved_search, make_candidates, in_org, monkeypatch
):
    monkeypatch.setattr("pipelines.views.SMART_PREVIEW_COUNT_CAP", 2)
    make_candidates(3, city="Lisbon", seniority="junior")
    make_candidates(3, city="Porto", seniority="senior")
    with in_org():
        services.smart_pool_refresh(pool=smart_pool)

    response = recruiter_client.get(
        reverse("pipelines:smart_pool_preview", kwargs={"org_slug": org.slug}),
        {"saved_search": saved_search.pk, "impact": "1", "query": "seniority=senior"},
    )

    (impact,) = response.context["impacts"]
    assert (impact.size, impact.joining_text, impact.leaving_text) == (3, "2+", "2+")
    body = response.content.decode()
    assert ">2+</strong>" in body


def test_a_smart_pool_whose_rule_no_longer_holds_stays_as_it_is(
    org, admin_user, recruiter_user, stages, make_candidates, in_org, unscoped
):
    """Its rule filters by an owner who has since become a viewer (owner choices are recruiters
    and admins): finding nobody would empty the pool, leaving the filter out would fill it with
    everyone. It stays as it was until the rule is fixed."""
    from crm.models import Membership, Role

    with scopes_disabled():
        search = SavedSearch.objects.create(
            organization=org, owner=admin_user, name="Riya's", query={"owner": [recruiter_user.pk]}
        )
    pool = PoolFactory(
        organization=org, owner=admin_user, kind=Pool.Kind.SMART, saved_search=search
    )
    theirs = make_candidates(2, owner=recruiter_user)
    (other,) = make_candidates(1)
    with in_org():
        assert services.smart_pool_refresh(pool=pool) == (2, 0)
    with unscoped():
        Membership.objects.filter(organization=org, user=recruiter_user).update(role=Role.VIEWER)

    with in_org():
        assert services.smart_pool_refresh(pool=pool) == (0, 0)
        # Edits re-evaluate the candidates: nobody enters or leaves either.
        Candidate.objects.filter(pk=theirs[0].pk).update(city="Faro")
        assert services.smart_pools_reevaluate_candidate(candidate=theirs[0]) == {}
        assert services.smart_pools_reevaluate_candidate(candidate=other) == {}
    assert _members(pool) == {c.pk for c in theirs}
