"""Campaign URLs, mounted at /o/<org_slug>/campaigns/. Every pattern is swept by
tests/test_isolation.py (OBJECT_KWARGS creates each kind of object its patterns take)."""

from django.urls import path

from campaigns.views import (
    campaigns,
    consent,
    enroll,
    sender_profile,
    sequences,
    settings,
    suppressions,
    templates,
)

app_name = "campaigns"

urlpatterns = [
    path("", campaigns.campaign_list, name="list"),
    path("new/", campaigns.campaign_create, name="create"),
    path("<int:campaign_id>/", campaigns.campaign_detail, name="detail"),
    path("<int:campaign_id>/launch/", campaigns.campaign_launch, name="launch"),
    path("<int:campaign_id>/email/", campaigns.campaign_email_edit, name="email_edit"),
    path("<int:campaign_id>/broadcast/", campaigns.broadcast_edit, name="broadcast_edit"),
    path("<int:campaign_id>/preview/", campaigns.campaign_preview, name="preview"),
    path("<int:campaign_id>/test/", campaigns.campaign_test_send, name="test_send"),
    path("<int:campaign_id>/emails/", campaigns.campaign_message_list, name="messages"),
    path(
        "<int:campaign_id>/emails/<int:message_id>/",
        campaigns.campaign_message_detail,
        name="message_detail",
    ),
    path(
        "<int:campaign_id>/emails/<int:message_id>/html/",
        campaigns.campaign_message_html,
        name="message_html",
    ),
    path("signature/", sender_profile.sender_profile_edit, name="sender_profile"),
    path("settings/email/", settings.email_settings_edit, name="email_settings"),
    path(
        "settings/domains/<int:domain_id>/",
        settings.sending_domain_edit,
        name="sending_domain_edit",
    ),
    path(
        "settings/domains/<int:domain_id>/verify/",
        settings.sending_domain_verify,
        name="sending_domain_verify",
    ),
    path("settings/suppressions/", suppressions.suppression_list, name="suppression_list"),
    path(
        "settings/suppressions/export/",
        suppressions.suppressions_export,
        name="suppressions_export",
    ),
    path(
        "settings/suppressions/<int:suppression_id>/lift/",
        suppressions.suppression_lift,
        name="suppression_lift",
    ),
    path("settings/topics/", settings.topic_list, name="topic_list"),
    path("settings/topics/<int:topic_id>/", settings.topic_edit, name="topic_edit"),
    path("settings/topics/<int:topic_id>/archive/", settings.topic_archive, name="topic_archive"),
    path("settings/role-families/", settings.role_family_list, name="role_family_list"),
    path(
        "settings/role-families/<int:role_family_id>/",
        settings.role_family_edit,
        name="role_family_edit",
    ),
    path(
        "settings/role-families/<int:role_family_id>/archive/",
        settings.role_family_archive,
        name="role_family_archive",
    ),
    path(
        "candidates/<int:candidate_id>/consent/",
        consent.consent_request,
        name="consent_request",
    ),
    # Sequences (campaign_detail shows a sequence's page through views.sequences).
    path("new-sequence/", sequences.sequence_create, name="sequence_create"),
    path("enroll/", enroll.campaign_enroll, name="enroll"),
    path("<int:campaign_id>/settings/", sequences.sequence_edit, name="sequence_edit"),
    path("<int:campaign_id>/steps/new/", sequences.step_create, name="step_create"),
    path("<int:campaign_id>/steps/<int:step_id>/", sequences.step_edit, name="step_edit"),
    path(
        "<int:campaign_id>/steps/<int:step_id>/delete/", sequences.step_delete, name="step_delete"
    ),
    path("<int:campaign_id>/steps/<int:step_id>/move/", sequences.step_move, name="step_move"),
    path(
        "<int:campaign_id>/steps/<int:step_id>/preview/",
        sequences.step_preview,
        name="step_preview",
    ),
    path(
        "<int:campaign_id>/steps/<int:step_id>/test/",
        sequences.step_test_send,
        name="step_test_send",
    ),
    path("<int:campaign_id>/pause/", sequences.campaign_pause, name="pause"),
    path("<int:campaign_id>/resume/", sequences.campaign_resume, name="resume"),
    path("<int:campaign_id>/end/", sequences.sequence_end, name="sequence_end"),
    path(
        "<int:campaign_id>/enrollments/<int:enrollment_id>/remove/",
        sequences.enrollment_remove,
        name="enrollment_remove",
    ),
    path("templates/", templates.template_list, name="template_list"),
    path("templates/new/", templates.template_create, name="template_create"),
    path("templates/<int:template_id>/", templates.template_edit, name="template_edit"),
    path(
        "templates/<int:template_id>/preview/", templates.template_preview, name="template_preview"
    ),
    path(
        "templates/<int:template_id>/test/", templates.template_test_send, name="template_test_send"
    ),
]
