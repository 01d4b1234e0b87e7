"""Talent pools, boards, stages, roles and follow-ups, mounted at /o/<org_slug>/pools/. Every
pattern is swept by tests/test_isolation.py (pool_id, stage_id, pool_membership_id, role_id and
follow_up_id have entries in its OBJECT_KWARGS)."""

from django.urls import path

from pipelines import views

app_name = "pipelines"

urlpatterns = [
    # Pools
    path("", views.pool_list, name="pool_list"),
    path("new/", views.pool_create, name="pool_create"),
    path("add/", views.pool_add, name="pool_add"),
    path("preview/", views.smart_pool_preview, name="smart_pool_preview"),
    path("<int:pool_id>/", views.pool_board, name="pool_board"),
    path("<int:pool_id>/edit/", views.pool_edit, name="pool_edit"),
    path("<int:pool_id>/archive/", views.pool_archive, name="pool_archive"),
    path("<int:pool_id>/restore/", views.pool_restore, name="pool_restore"),
    path("<int:pool_id>/delete/", views.pool_delete, name="pool_delete"),
    path("<int:pool_id>/refresh/", views.pool_refresh, name="pool_refresh"),
    # The board
    path("<int:pool_id>/columns/<int:stage_id>/", views.board_column, name="board_column"),
    path("<int:pool_id>/cards/move/", views.cards_move_bulk, name="cards_move_bulk"),
    path(
        "<int:pool_id>/cards/<int:pool_membership_id>/move/",
        views.card_move,
        name="card_move",
    ),
    path(
        "<int:pool_id>/cards/<int:pool_membership_id>/remove/",
        views.card_remove,
        name="card_remove",
    ),
    path(
        "candidates/<int:candidate_id>/add/",
        views.candidate_add_to_pool,
        name="candidate_add_to_pool",
    ),
    # Stages: the organisation's defaults …
    path("stages/", views.stage_list, name="stage_list"),
    path("stages/new/", views.stage_add, name="stage_add"),
    path("stages/<int:stage_id>/edit/", views.stage_edit, name="stage_edit"),
    path("stages/<int:stage_id>/reorder/", views.stage_reorder, name="stage_reorder"),
    path("stages/<int:stage_id>/archive/", views.stage_archive, name="stage_archive"),
    # … and a pool's own
    path(
        "<int:pool_id>/stages/customise/",
        views.pool_customize_stages,
        name="pool_customize_stages",
    ),
    path("<int:pool_id>/stages/", views.stage_list, name="pool_stage_list"),
    path("<int:pool_id>/stages/new/", views.stage_add, name="pool_stage_add"),
    path("<int:pool_id>/stages/<int:stage_id>/edit/", views.stage_edit, name="pool_stage_edit"),
    path(
        "<int:pool_id>/stages/<int:stage_id>/reorder/",
        views.stage_reorder,
        name="pool_stage_reorder",
    ),
    path(
        "<int:pool_id>/stages/<int:stage_id>/archive/",
        views.stage_archive,
        name="pool_stage_archive",
    ),
    # Roles (future hiring needs)
    path("roles/", views.role_list, name="role_list"),
    path("roles/new/", views.role_create, name="role_create"),
    path("roles/<int:role_id>/edit/", views.role_edit, name="role_edit"),
    path("roles/<int:role_id>/delete/", views.role_delete, name="role_delete"),
    # Follow-ups
    path("follow-ups/", views.follow_ups, name="follow_ups"),
    path(
        "candidates/<int:candidate_id>/follow-ups/new/",
        views.follow_up_create,
        name="follow_up_create",
    ),
    path("follow-ups/<int:follow_up_id>/done/", views.follow_up_done, name="follow_up_done"),
    path("follow-ups/<int:follow_up_id>/edit/", views.follow_up_edit, name="follow_up_edit"),
    path("follow-ups/<int:follow_up_id>/later/", views.follow_up_later, name="follow_up_later"),
]
