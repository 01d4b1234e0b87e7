"""The `pool_name` and `recruiter.*` merge fields: declared, filled by the dispatcher and the
previews, and the recruiter's own page for their name, title and signature."""

from django.urls import reverse
from django_scopes import scope, scopes_disabled

from campaigns.models import Message, SenderProfile, Step
from campaigns.services import rendering
from campaigns.services.campaigns import campaign_launch
from campaigns.services.dispatch import dispatch_due
from campaigns.tests.factories import make_broadcast, make_candidates
from pipelines.tests.factories import PoolFactory, PoolMembershipFactory

BODY = (
    'You are in {{ pool_name|default("our network") }}.\n\n'
    "{{ recruiter.name }}, {{ recruiter.title }}\n\n{{ recruiter.signature }}"
)


def test_pool_name_and_signature_are_declared_fields():
    assert rendering.template_problems(BODY) == []
    assert rendering.template_problems("{{ recruiter.password }}") != []


def test_signature_keeps_its_lines_in_html_and_stays_text():
    compiled = rendering.email_compile(
        subject="s", preheader="", body_markdown="Best,\n\n{{ recruiter.signature }}"
    )
    context = rendering.sample_context()
    context["recruiter"] = {**context["recruiter"], "signature": "Rex <b>R</b>\nTalent & Co"}
    rendered = rendering.email_render(compiled, context)
    assert "Rex &lt;b&gt;R&lt;/b&gt;<br>\nTalent &amp; Co" in rendered.html_body
    assert rendered.text_body.endswith("Rex <b>R</b>\nTalent & Co\n")


def _send_to_pool(org, user, *, body=BODY, pools=(), **fields):
    campaign = make_broadcast(org, user=user, body=body, **fields)
    with scopes_disabled():
        campaign.pools.set(pools)
    with scope(organization=org):
        campaign_launch(campaign=campaign, user=user)
        dispatch_due()
        return {m.candidate.first_name: m for m in Message.objects.select_related("candidate")}


def test_dispatch_fills_pool_name_from_the_campaigns_pools(org, recruiter_user):
    alumni = PoolFactory(organization=org, name="Alumni")
    backend = PoolFactory(organization=org, name="Backend engineers")
    ada = PoolMembershipFactory(pool=backend, candidate__first_name="Ada").candidate
    PoolMembershipFactory(pool=alumni, candidate=ada)  # in both: the first pool by name
    PoolMembershipFactory(pool=backend, candidate__first_name="Bob")
    make_candidates(org, 1, first_name="Cy")  # found by the saved search, in no pool

    messages = _send_to_pool(org, recruiter_user, pools=[backend, alumni])

    assert "You are in Alumni." in messages["Ada"].html
    assert "You are in Backend engineers." in messages["Bob"].text
    assert "You are in our network." in messages["Cy"].html


def test_dispatch_pool_name_falls_back_without_a_pool(org, recruiter_user):
    make_candidates(org, 1, first_name="Cy")
    messages = _send_to_pool(org, recruiter_user)
    assert "You are in our network." in messages["Cy"].html


def test_sequence_pool_name_is_the_auto_join_pool(org, recruiter_user):
    from campaigns.models import Campaign

    pool = PoolFactory(organization=org, name="Platform talent")
    other = PoolFactory(organization=org, name="Aardvarks")
    member = PoolMembershipFactory(pool=pool, candidate__first_name="Dee").candidate
    PoolMembershipFactory(pool=other, candidate=member)
    campaign = make_broadcast(org, user=recruiter_user, body=BODY, tag="none")
    with scopes_disabled():
        Campaign.objects.filter(pk=campaign.pk).update(
            kind=Campaign.Kind.SEQUENCE,
            auto_join_pool=pool,
            window_days=[0, 1, 2, 3, 4, 5, 6],
            window_start="00:00",
            window_end="23:59",
        )
        campaign.refresh_from_db()
        campaign.pools.set([other])
    with scope(organization=org):
        campaign_launch(campaign=campaign, user=recruiter_user)
        dispatch_due()
        html = Message.objects.get(candidate=member).html
    assert "You are in Platform talent." in html


def test_sent_email_signs_with_the_campaign_recruiters_profile(org, recruiter_user):
    recruiter_user.name, recruiter_user.job_title = "Rex Recruiter", "Talent Partner"
    recruiter_user.save()
    with scopes_disabled():
        SenderProfile.objects.create(
            organization=org, user=recruiter_user, signature="Rex\nAcme Talent, London"
        )
    make_candidates(org, 1, first_name="Cy")
    message = _send_to_pool(org, recruiter_user)["Cy"]
    assert "Rex Recruiter, Talent Partner" in message.html
    assert "Rex<br>\nAcme Talent, London" in message.html
    assert "Rex\nAcme Talent, London" in message.text


def _profile_url(org):
    return reverse("campaigns:sender_profile", args=[org.slug])


def test_sender_profile_page_saves_name_title_and_signature(recruiter_client, recruiter_user, org):
    page = recruiter_client.get(_profile_url(org)).content.decode()
    response = recruiter_client.post(
        _profile_url(org),
        {"name": "Rex R.", "job_title": "Lead recruiter", "signature": " Rex\nAcme Talent \n"},
    )
    recruiter_user.refresh_from_db()
    with scopes_disabled():
        profile = SenderProfile.objects.get(organization=org, user=recruiter_user)
    shown = recruiter_client.get(_profile_url(org)).content.decode()
    assert "An example signature" in page
    assert response.status_code == 302
    assert (recruiter_user.name, recruiter_user.job_title) == ("Rex R.", "Lead recruiter")
    assert profile.signature == "Rex\nAcme Talent"
    assert "Your signature, as candidates see it" in shown


def test_sender_profile_page_needs_a_name_and_is_for_recruiters(
    recruiter_client, viewer_client, client, org
):
    invalid = recruiter_client.post(_profile_url(org), {"name": "", "signature": "x"})
    assert invalid.status_code == 200 and "This field is required." in invalid.content.decode()
    assert viewer_client.get(_profile_url(org)).status_code == 403
    assert "/accounts/login/" in client.get(_profile_url(org))["Location"]


def test_campaign_preview_shows_the_campaigns_recruiter_not_the_viewer(
    viewer_client, recruiter_user, org
):
    recruiter_user.name = "Rex Recruiter"
    recruiter_user.save()
    campaign = make_broadcast(org, user=recruiter_user, body="{{ recruiter.name }}")
    with scopes_disabled():
        Step.objects.filter(campaign=campaign).update(body_markdown="Signed: {{ recruiter.name }}")
    body = viewer_client.get(reverse("campaigns:preview", args=[org.slug, campaign.pk]))
    assert "Signed: Rex Recruiter" in body.content.decode()
