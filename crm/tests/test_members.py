import re
from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.test.html import parse_html
from django.urls import reverse
from django.utils import timezone
from django_scopes import scopes_disabled

from crm.models import Invitation, Membership, Role, User
from crm.tests.markup import attributes, elements, form_of, submit_buttons, text
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _run_on_commit(django_capture_on_commit_callbacks):
    """Invitations are emailed on commit; run those callbacks inside each test transaction."""
    global _capture
    _capture = django_capture_on_commit_callbacks


def _invite(client, org, email, role=Role.RECRUITER):
    with _capture(execute=True):
        response = client.post(
            f"/o/{org.slug}/settings/members/invite/", {"email": email, "role": role}
        )
    assert response.status_code == 302, response.content
    link = re.search(r"https?://\S+/invitations/(\S+)/", mail.outbox[-1].body)
    return f"/invitations/{link.group(1)}/"


def _membership(org, user):
    with scopes_disabled():
        return Membership.objects.filter(organization=org, user=user).first()


def test_invitation_email_has_single_use_link_and_no_list_headers(admin_client, org):
    _invite(admin_client, org, "new.person@example.com")

    message = mail.outbox[-1]
    assert message.to == ["new.person@example.com"]
    assert "Acme Talent" in message.subject
    assert "List-Unsubscribe" not in message.extra_headers
    with scopes_disabled():
        invitation = Invitation.objects.get()
    # Only a hash of the token is stored.
    assert invitation.token_hash not in message.body


def test_invitation_existing_account_accepts_once(admin_client, org, client):
    invitee = UserFactory(email="existing@example.com")
    link = _invite(admin_client, org, "Existing@Example.com", Role.VIEWER)
    client.force_login(invitee)

    shown = client.get(link)
    accepted = client.post(link)
    again = client.post(link)

    assert shown.status_code == 200 and b"Accept invitation" in shown.content
    assert accepted["Location"] == f"/o/{org.slug}/"
    assert _membership(org, invitee).role == Role.VIEWER
    assert again.status_code == 200 and b"has accepted" in again.content
    with scopes_disabled():
        assert Membership.objects.filter(organization=org, user=invitee).count() == 1


def test_invitation_new_account_signup_verify_then_accept(admin_client, org, client):
    link = _invite(admin_client, org, "brand.new@example.com")

    landing = client.get(link)
    client.post(
        reverse("account_signup"),
        {
            "email": "brand.new@example.com",
            "password1": "a-long-passphrase-1",
            "password2": "a-long-passphrase-1",
        },
    )
    confirm = re.search(r"/accounts/confirm-email/[^/\s]+/", mail.outbox[-1].body).group(0)
    after_confirm = client.post(confirm)
    accept_page = client.get(after_confirm["Location"])
    accepted = client.post(link)

    user = User.objects.get(email="brand.new@example.com")
    assert landing.status_code == 200
    assert after_confirm["Location"] == link
    assert accept_page.status_code == 200
    assert accepted["Location"] == f"/o/{org.slug}/"
    assert EmailAddress.objects.get(user=user).verified
    assert _membership(org, user).role == Role.RECRUITER


def test_invitation_expired_cannot_be_accepted(admin_client, org, client):
    invitee = UserFactory(email="late@example.com")
    link = _invite(admin_client, org, "late@example.com")
    with scopes_disabled():
        Invitation.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    client.force_login(invitee)

    response = client.post(link)

    assert b"has expired" in response.content
    assert _membership(org, invitee) is None


def test_invitation_for_another_address_is_refused(admin_client, org, client):
    _invite(admin_client, org, "intended@example.com")
    link = re.search(r"/invitations/\S+/", mail.outbox[-1].body).group(0)
    someone_else = UserFactory(email="someone.else@example.com")
    client.force_login(someone_else)

    response = client.post(link, follow=True)

    assert _membership(org, someone_else) is None
    assert b"intended@example.com" in response.content


def test_invitation_revoked_link_is_dead(admin_client, org, client):
    invitee = UserFactory(email="revoked@example.com")
    link = _invite(admin_client, org, "revoked@example.com")
    with scopes_disabled():
        invitation = Invitation.objects.get()
    admin_client.post(f"/o/{org.slug}/settings/invitations/{invitation.pk}/revoke/")
    client.force_login(invitee)

    client.post(link)

    assert _membership(org, invitee) is None


def test_invitation_unknown_token_is_404(client):
    assert client.get("/invitations/not-a-token/").status_code == 404


def test_invite_invalid_email_rerenders_with_error(admin_client, org):
    response = admin_client.post(
        f"/o/{org.slug}/settings/members/invite/", {"email": "not-an-email", "role": "admin"}
    )
    assert response.status_code == 200
    assert "email" in response.context["form"].errors
    assert mail.outbox == []


def test_invite_existing_member_is_an_error(admin_client, org, recruiter_user):
    response = admin_client.post(
        f"/o/{org.slug}/settings/members/invite/",
        {"email": recruiter_user.email.upper(), "role": "viewer"},
    )
    assert "already a member" in str(response.context["form"].errors["email"])


def test_member_role_change_by_admin(admin_client, org, recruiter_user):
    membership = _membership(org, recruiter_user)
    admin_client.post(f"/o/{org.slug}/settings/members/{membership.pk}/role/", {"role": Role.ADMIN})
    assert _membership(org, recruiter_user).role == Role.ADMIN


def test_member_last_admin_cannot_be_demoted_or_removed(admin_client, org, admin_user):
    membership = _membership(org, admin_user)

    demote = admin_client.post(
        f"/o/{org.slug}/settings/members/{membership.pk}/role/", {"role": Role.VIEWER}, follow=True
    )
    remove = admin_client.post(
        f"/o/{org.slug}/settings/members/{membership.pk}/remove/", follow=True
    )

    assert _membership(org, admin_user).role == Role.ADMIN
    assert b"last admin cannot be demoted" in demote.content
    assert b"last admin cannot be removed" in remove.content


def test_member_admin_can_step_down_when_another_admin_exists(admin_client, org, admin_user):
    MembershipFactory(organization=org, role=Role.ADMIN)
    membership = _membership(org, admin_user)
    admin_client.post(
        f"/o/{org.slug}/settings/members/{membership.pk}/role/", {"role": Role.RECRUITER}
    )
    assert _membership(org, admin_user).role == Role.RECRUITER


def test_member_remove(admin_client, viewer_client, org, viewer_user):
    assert viewer_client.get(f"/o/{org.slug}/").status_code == 200
    membership = _membership(org, viewer_user)
    admin_client.post(f"/o/{org.slug}/settings/members/{membership.pk}/remove/")
    assert _membership(org, viewer_user) is None
    # Their session is still open; the organisation is gone from it at the next request.
    assert viewer_client.get(f"/o/{org.slug}/").status_code == 404
    assert viewer_client.get(f"/o/{org.slug}/candidates/").status_code == 404


@pytest.mark.parametrize("client_fixture", ["viewer_client", "recruiter_client"])
def test_member_writes_need_admin(request, org, admin_user, client_fixture):
    client = request.getfixturevalue(client_fixture)
    membership = _membership(org, admin_user)
    base = f"/o/{org.slug}/settings/"

    responses = [
        client.post(base + "members/invite/", {"email": "x@example.com", "role": "admin"}),
        client.post(base + f"members/{membership.pk}/role/", {"role": "viewer"}),
        client.post(base + f"members/{membership.pk}/remove/"),
    ]

    assert [r.status_code for r in responses] == [403, 403, 403]
    assert _membership(org, admin_user).role == Role.ADMIN
    assert mail.outbox == []


def test_members_page_role_select_saves_only_with_its_button(admin_client, org, recruiter_user):
    """An arrow key on the select must not change a role (WCAG 3.2.2): no autosubmit, a Save
    button in the select's own form, which posts to the role change."""
    membership = _membership(org, recruiter_user)

    html = admin_client.get(f"/o/{org.slug}/settings/members/").content.decode()

    form = form_of(html, f"role-{membership.pk}")
    select = next(element for element in elements(form) if element.name == "select")
    assert attributes(form)["action"] == f"/o/{org.slug}/settings/members/{membership.pk}/role/"
    assert "data-autosubmit" not in attributes(select)
    assert [text(button) for button in submit_buttons(form)] == [
        f"Save the role of {recruiter_user.display_name}"
    ]
    assert "data-autosubmit" not in html


def test_members_page_viewer_can_read(viewer_client, org, admin_user):
    response = viewer_client.get(f"/o/{org.slug}/settings/members/")
    assert response.status_code == 200
    assert admin_user.email.encode() in response.content
    assert b"Invite a teammate" not in response.content
    assert b"<select" not in response.content and b"Remove" not in response.content


def test_members_page_query_count_is_constant(admin_client, org, django_assert_max_num_queries):
    for _ in range(3):
        MembershipFactory(organization=org)
    with django_assert_max_num_queries(12) as captured:
        admin_client.get(f"/o/{org.slug}/settings/members/")
    few = len(captured)
    for _ in range(10):
        MembershipFactory(organization=org)
    with django_assert_max_num_queries(few) as captured_many:
        admin_client.get(f"/o/{org.slug}/settings/members/")
    assert len(captured_many) == few


def test_members_page_offers_the_last_admin_no_change_the_server_would_refuse(
    admin_client, org, admin_user, recruiter_user
):
    admin = _membership(org, admin_user)
    base = f"/o/{org.slug}/settings/members/"

    html = admin_client.get(base).content.decode()

    assert f'id="role-{admin.pk}"' not in html
    assert f'href="{base}{admin.pk}/remove/"' not in html
    assert "The only admin: make someone else admin before changing this role." in html
    recruiter = _membership(org, recruiter_user)
    assert f'href="{base}{recruiter.pk}/remove/"' in html

    second = MembershipFactory(organization=org, role=Role.ADMIN)
    html = admin_client.get(base).content.decode()
    assert f'id="role-{admin.pk}"' in html and f'id="role-{second.pk}"' in html
    assert "The only admin" not in html


class _MailServerDown:
    """EMAIL_BACKEND for a mail server that refuses connections."""

    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError(111, "Connection refused")


def _page_text(response) -> str:
    return text(parse_html(response.content.decode()))


def _invitation(email):
    with scopes_disabled():
        return Invitation.objects.filter(email=email).order_by("-pk").first()


# Committed for real, as in production (no request-wide transaction): the email goes out, or
# fails, inside the admin's request, and the page says which.
@pytest.mark.django_db(transaction=True)
def test_invitation_whose_email_fails_is_kept_and_can_be_resent(admin_client, org, settings):
    settings.EMAIL_BACKEND = f"{__name__}._MailServerDown"
    with _capture(execute=True):
        response = admin_client.post(
            f"/o/{org.slug}/settings/members/invite/",
            {"email": "later@example.com", "role": Role.RECRUITER},
            follow=True,
        )
    assert response.status_code == 200
    assert "is saved, but its email could not be sent" in _page_text(response)
    failed = _invitation("later@example.com")
    assert failed.is_pending and failed.emailed_at is None
    assert "Connection refused" in failed.email_error
    page = admin_client.get(f"/o/{org.slug}/settings/members/")
    assert "The email could not be sent: [Errno 111] Connection refused" in _page_text(page)

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    with _capture(execute=True):
        response = admin_client.post(
            f"/o/{org.slug}/settings/invitations/{failed.pk}/resend/", follow=True
        )
    assert "Invitation sent to later@example.com." in _page_text(response)
    resent = _invitation("later@example.com")
    assert resent.pk == failed.pk and resent.email_error == "" and resent.emailed_at
    assert resent.token_hash != failed.token_hash
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["later@example.com"]


def test_invitation_resend_gives_a_new_link_and_a_new_week(admin_client, org, client):
    old_link = _invite(admin_client, org, "slow@example.com")
    with scopes_disabled():
        Invitation.objects.filter(email="slow@example.com").update(
            expires_at=timezone.now() - timedelta(days=1)
        )
    invitation = _invitation("slow@example.com")
    assert invitation.state == "expired"
    page = admin_client.get(f"/o/{org.slug}/settings/members/")
    assert f"/settings/invitations/{invitation.pk}/resend/" in page.content.decode()

    with _capture(execute=True):
        admin_client.post(f"/o/{org.slug}/settings/invitations/{invitation.pk}/resend/")
    new_link = re.search(r"https?://\S+(/invitations/\S+/)", mail.outbox[-1].body).group(1)
    assert new_link != old_link
    assert _invitation("slow@example.com").state == "pending"
    invitee = UserFactory(email="slow@example.com")
    client.force_login(invitee)
    assert client.post(old_link).status_code == 404
    client.post(new_link)
    assert _membership(org, invitee).role == Role.RECRUITER


def test_invitation_accepted_or_revoked_is_not_resent_or_revoked_again(admin_client, org, client):
    link = _invite(admin_client, org, "taken@example.com")
    invitee = UserFactory(email="taken@example.com")
    client.force_login(invitee)
    client.post(link)
    invitation = _invitation("taken@example.com")
    sent = len(mail.outbox)

    resend = admin_client.post(
        f"/o/{org.slug}/settings/invitations/{invitation.pk}/resend/", follow=True
    )
    assert "has been accepted" in _page_text(resend)
    revoke = admin_client.post(
        f"/o/{org.slug}/settings/invitations/{invitation.pk}/revoke/", follow=True
    )
    assert "had already been accepted" in _page_text(revoke)
    assert "was revoked" not in _page_text(revoke)
    assert len(mail.outbox) == sent
    accepted = _invitation("taken@example.com")
    assert accepted.revoked_at is None and accepted.token_hash == invitation.token_hash


def test_invitation_email_subject_is_not_html_escaped(admin_client, org, admin_user):
    admin_user.name = "Seán O'Neil"
    admin_user.save(update_fields=["name"])
    org.name = "Smith & Jones"
    org.save(update_fields=["name"])
    _invite(admin_client, org, "plain@example.com")
    message = mail.outbox[-1]
    assert message.subject == "Seán O'Neil invited you to Smith & Jones on Rapport"
    html = message.alternatives[0][0]
    assert "Smith &amp; Jones" in html and "Smith & Jones" not in html


def test_invitations_are_limited_per_hour_for_the_organisation(admin_client, org, settings):
    settings.INVITATIONS_PER_HOUR = 2
    _invite(admin_client, org, "one@example.com")
    _invite(admin_client, org, "two@example.com")
    sent = len(mail.outbox)
    with _capture(execute=True):
        refused = admin_client.post(
            f"/o/{org.slug}/settings/members/invite/",
            {"email": "three@example.com", "role": Role.RECRUITER},
        )
    assert refused.status_code == 200
    assert "No more than 2 invitations can be sent in an hour" in _page_text(refused)
    assert _invitation("three@example.com") is None
    assert len(mail.outbox) == sent

    # A resend is an invitation email too.
    one = _invitation("one@example.com")
    with _capture(execute=True):
        resend = admin_client.post(
            f"/o/{org.slug}/settings/invitations/{one.pk}/resend/", follow=True
        )
    assert "No more than 2 invitations" in _page_text(resend)
    assert len(mail.outbox) == sent


def test_invitations_are_limited_per_hour_for_the_admin_across_organisations(
    admin_client, admin_user, org, other_org, settings
):
    settings.INVITATIONS_PER_HOUR = 2
    MembershipFactory(organization=other_org, user=admin_user, role=Role.ADMIN)
    _invite(admin_client, org, "one@example.com")
    _invite(admin_client, other_org, "two@example.com")
    with _capture(execute=True):
        refused = admin_client.post(
            f"/o/{org.slug}/settings/members/invite/",
            {"email": "three@example.com", "role": Role.RECRUITER},
        )
    assert "No more than 2 invitations" in _page_text(refused)
    assert _invitation("three@example.com") is None


def test_removing_a_member_hands_what_they_were_in_charge_of_to_a_colleague(
    admin_client, admin_user, org, other_org, recruiter_user
):
    from campaigns.tests.factories import make_broadcast
    from candidates.models import Candidate
    from candidates.tests.factories import CandidateFactory
    from pipelines.models import FollowUp, Pool
    from pipelines.tests.factories import FollowUpFactory, PoolFactory

    owned = CandidateFactory(organization=org, owner=recruiter_user)
    private = PoolFactory(organization=org, owner=recruiter_user, visibility=Pool.Visibility.OWNER)
    open_task = FollowUpFactory(candidate=owned, owner=recruiter_user)
    done_task = FollowUpFactory(candidate=owned, owner=recruiter_user, completed_at=timezone.now())
    campaign = make_broadcast(org, user=recruiter_user)  # with its saved search
    # Names of saved searches are unique per person: the admin's own keeps its name.
    with scopes_disabled():
        from candidates.models import SavedSearch

        SavedSearch.objects.create(organization=org, owner=recruiter_user, name="Berlin", query={})
        admins_own = SavedSearch.objects.create(
            organization=org, owner=admin_user, name="Berlin", query={}
        )
    # The same person in another organisation keeps what they have there.
    MembershipFactory(organization=other_org, user=recruiter_user, role=Role.RECRUITER)
    elsewhere = CandidateFactory(organization=other_org, owner=recruiter_user)
    assert admin_client.get(f"/o/{org.slug}/pools/{private.pk}/").status_code == 404

    membership = _membership(org, recruiter_user)
    page = admin_client.get(f"/o/{org.slug}/settings/members/{membership.pk}/remove/")
    shown = _page_text(page)
    for line in (
        "1 candidate they own",
        "2 saved searches",
        "1 talent pool they own",
        "1 open follow-up",
        "1 campaign sent in their name",
    ):
        assert line in shown
    response = admin_client.post(
        f"/o/{org.slug}/settings/members/{membership.pk}/remove/",
        {"successor": admin_user.pk},
        follow=True,
    )

    assert _membership(org, recruiter_user) is None
    assert (
        "took over: 1 candidate they own, 2 saved searches, 1 talent pool they own, 1 open "
        "follow-up and 1 campaign sent in their name."
    ) in _page_text(response)
    with scopes_disabled():
        assert Candidate.objects.get(pk=owned.pk).owner == admin_user
        assert Pool.objects.get(pk=private.pk).owner == admin_user
        assert FollowUp.objects.get(pk=open_task.pk).owner == admin_user
        assert FollowUp.objects.get(pk=done_task.pk).owner == recruiter_user
        campaign.refresh_from_db()
        assert campaign.sender == admin_user
        assert Candidate.objects.get(pk=elsewhere.pk).owner == recruiter_user
        assert sorted(
            SavedSearch.objects.filter(owner=admin_user, name__startswith="Berlin").values_list(
                "name", flat=True
            )
        ) == ["Berlin", "Berlin (2)"]
        assert SavedSearch.objects.get(pk=admins_own.pk).name == "Berlin"
    assert admin_client.get(f"/o/{org.slug}/pools/{private.pk}/").status_code == 200


def test_removing_a_member_hands_over_only_to_a_recruiter_or_admin_who_stays(
    admin_client, org, recruiter_user, viewer_user, outsider_user
):
    from candidates.tests.factories import CandidateFactory

    CandidateFactory(organization=org, owner=recruiter_user)
    membership = _membership(org, recruiter_user)
    url = f"/o/{org.slug}/settings/members/{membership.pk}/remove/"
    for successor in (viewer_user, outsider_user, recruiter_user):
        refused = admin_client.post(url, {"successor": successor.pk})
        assert refused.status_code == 200
        assert "Select a valid choice" in _page_text(refused)
    assert _membership(org, recruiter_user) is not None


def test_removing_a_member_who_is_in_charge_of_nothing_says_so(admin_client, org, viewer_user):
    membership = _membership(org, viewer_user)
    page = admin_client.get(f"/o/{org.slug}/settings/members/{membership.pk}/remove/")
    assert "They are in charge of nothing here that needs a new owner." in _page_text(page)
    assert 'name="successor"' not in page.content.decode()


def test_a_member_who_becomes_a_viewer_hands_over_what_they_were_in_charge_of(
    admin_client, admin_user, org, recruiter_user
):
    """A viewer can own no candidates and get no follow-ups (their digest goes to recruiters
    and admins), nor send campaigns: the admin who changes the role takes over."""
    from candidates.models import Candidate
    from candidates.tests.factories import CandidateFactory
    from pipelines.models import FollowUp
    from pipelines.tests.factories import FollowUpFactory

    owned = CandidateFactory(organization=org, owner=recruiter_user)
    task = FollowUpFactory(candidate=owned, owner=recruiter_user)
    membership = _membership(org, recruiter_user)

    response = admin_client.post(
        f"/o/{org.slug}/settings/members/{membership.pk}/role/",
        {"role": Role.VIEWER},
        follow=True,
    )

    assert _membership(org, recruiter_user).role == Role.VIEWER
    assert "took over: 1 candidate they own and 1 open follow-up." in _page_text(response)
    with scopes_disabled():
        assert Candidate.objects.get(pk=owned.pk).owner == admin_user
        assert FollowUp.objects.get(pk=task.pk).owner == admin_user


def test_an_admin_who_makes_themself_a_viewer_hands_over_to_another_admin(
    admin_client, admin_user, org
):
    from candidates.models import Candidate
    from candidates.tests.factories import CandidateFactory

    other_admin = UserFactory(email="second.admin@example.com")
    MembershipFactory(organization=org, user=other_admin, role=Role.ADMIN)
    owned = CandidateFactory(organization=org, owner=admin_user)
    membership = _membership(org, admin_user)

    admin_client.post(f"/o/{org.slug}/settings/members/{membership.pk}/role/", {"role": "viewer"})

    assert _membership(org, admin_user).role == Role.VIEWER
    with scopes_disabled():
        assert Candidate.objects.get(pk=owned.pk).owner == other_admin
