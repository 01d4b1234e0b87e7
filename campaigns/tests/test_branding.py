"""Branding: the organisation's logo and colour in campaign emails and on candidate pages, the
public logo URL, and the settings form that uploads it."""

import io

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django_scopes import scope
from PIL import Image

from campaigns.models import Message
from campaigns.services.branding import brand_for, contrast_on_white, logo_key
from campaigns.services.campaigns import campaign_launch
from campaigns.services.dispatch import dispatch_due
from campaigns.services.tokens import candidate_token
from campaigns.tests.factories import make_broadcast, make_candidates


def _image(size=(1200, 300), fmt="PNG", color=(31, 95, 191)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format=fmt)
    return out.getvalue()


def _settings_post(**overrides):
    data = {
        "sender-sender_name": "Acme Talent",
        "sender-sender_email": "talent@acme.example",
        "sender-postal_address": "1 Example Street, London",
        "rules-track_opens": "on",
        "rules-track_clicks": "on",
        "rules-frequency_cap_messages": "0",
        "rules-frequency_cap_days": "7",
        "rules-sender_daily_cap": "0",
        "brand-brand_color": "",
    }
    data.update(overrides)
    return data


def _settings_url(org):
    return reverse("campaigns:email_settings", args=[org.slug])


def _upload(admin_client, org, content: bytes, name="logo.png", **overrides):
    upload = SimpleUploadedFile(name, content, content_type="image/png")
    return admin_client.post(
        _settings_url(org), _settings_post(**{"brand-logo": upload}, **overrides)
    )


def test_logo_upload_is_resized_stored_as_png_and_served_publicly(admin_client, client, org):
    response = _upload(admin_client, org, _image(), **{"brand-brand_color": "#1F5FBF"})
    org.refresh_from_db()
    assert response.status_code == 302
    assert (org.logo_width, org.logo_height, org.brand_color) == (600, 150, "#1f5fbf")
    brand = brand_for(org)
    assert (brand.logo_width, brand.logo_height) == (240, 60)

    served = client.get(brand.logo_url.removeprefix("https://rapport.example.com"))
    body = b"".join(served.streaming_content)
    assert served.status_code == 200
    assert served["Content-Type"] == "image/png"
    assert "immutable" in served["Cache-Control"]
    assert Image.open(io.BytesIO(body)).size == (600, 150)
    # A guessed or old key, or another organisation's id, is a 404.
    assert client.get(reverse("campaigns_public:logo", args=[org.pk, "guess"])).status_code == 404
    other = reverse("campaigns_public:logo", args=[org.pk + 1000, logo_key(org)])
    assert client.get(other).status_code == 404


def test_logo_replaced_gets_a_new_url_and_the_old_one_is_gone(admin_client, client, org):
    _upload(admin_client, org, _image())
    org.refresh_from_db()
    old_url = brand_for(org).logo_url.removeprefix("https://rapport.example.com")
    _upload(admin_client, org, _image(size=(200, 200), fmt="JPEG"), name="new.jpg")
    org.refresh_from_db()
    new_url = brand_for(org).logo_url.removeprefix("https://rapport.example.com")
    assert new_url != old_url
    assert client.get(old_url).status_code == 404
    assert client.get(new_url).status_code == 200
    assert (brand_for(org).logo_width, brand_for(org).logo_height) == (60, 60)


def test_logo_that_is_not_an_image_is_refused_and_nothing_changes(admin_client, org):
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    response = _upload(admin_client, org, svg, name="logo.svg")
    org.refresh_from_db()
    assert response.status_code == 200
    assert "Upload a valid image." in response.content.decode()
    assert not org.logo


def test_brand_colour_too_light_for_links_is_refused(admin_client, org):
    response = admin_client.post(
        _settings_url(org), _settings_post(**{"brand-brand_color": "#ffd700"})
    )
    org.refresh_from_db()
    assert response.status_code == 200
    assert "too light for links" in response.content.decode()
    assert org.brand_color == ""
    assert contrast_on_white("#ffd700") < 4.5 <= contrast_on_white("#1f5fbf")


def test_logo_can_be_removed(admin_client, org):
    _upload(admin_client, org, _image())
    response = admin_client.post(_settings_url(org), _settings_post(**{"brand-remove_logo": "on"}))
    org.refresh_from_db()
    assert response.status_code == 302
    assert not org.logo and brand_for(org).logo_url == ""


def test_campaign_email_carries_the_logo_colour_and_an_accessible_layout(
    admin_client, org, recruiter_user
):
    _upload(admin_client, org, _image(), **{"brand-brand_color": "#1f5fbf"})
    org.refresh_from_db()
    make_candidates(org, 1)
    campaign = make_broadcast(org, user=recruiter_user)
    with scope(organization=org):
        campaign_launch(campaign=campaign, user=recruiter_user)
        dispatch_due()
        html = Message.objects.get(campaign=campaign).html
    brand = brand_for(org)
    assert f'<img src="{brand.logo_url}" alt="Acme Talent" width="240" height="60"' in html
    assert "border-top:4px solid #1f5fbf" in html and ".email-body a { color: #1f5fbf; }" in html
    assert '<html lang="en" dir="ltr">' in html
    assert 'role="article" aria-roledescription="email"' in html
    assert html.count('role="presentation"') == 2  # layout tables are not data tables
    assert "color:#4b5563" in html  # footer text: 7:1 on the page background, not 4.4:1


def test_email_without_a_logo_shows_the_name(org, recruiter_user):
    make_candidates(org, 1)
    campaign = make_broadcast(org, user=recruiter_user)
    with scope(organization=org):
        campaign_launch(campaign=campaign, user=recruiter_user)
        dispatch_due()
        html = Message.objects.get(campaign=campaign).html
    assert '<img src="https://rapport.example.com/e/b/' not in html
    assert "Acme Talent" in html and "border-top:4px" not in html


def test_candidate_pages_show_the_logo(admin_client, client, org):
    _upload(admin_client, org, _image())
    org.refresh_from_db()
    candidate = make_candidates(org, 1)[0]
    token = candidate_token(organization_id=org.pk, candidate_id=candidate.pk, message_id=0)
    for name in ("campaigns_public:unsubscribe", "campaigns_public:preferences"):
        body = client.get(reverse(name, args=[token])).content.decode()
        assert f'src="{brand_for(org).logo_url}"' in body
        assert 'alt="Acme Talent"' in body


def test_branding_is_admin_only(recruiter_client, org):
    upload = SimpleUploadedFile("logo.png", _image(), content_type="image/png")
    response = recruiter_client.post(_settings_url(org), _settings_post(**{"brand-logo": upload}))
    org.refresh_from_db()
    assert response.status_code == 403
    assert not org.logo
