"""A logo whose header claims more pixels than any logo has is refused before a pixel is
decoded: a 46 KB PNG of 13000 x 13000 pixels took the web worker to ~1.3 GB. A large JPEG is
decoded at a fraction of its size."""

import io
from unittest import mock

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image, ImageFile

from campaigns.services.branding import LOGO_MAX_PIXELS


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


def _upload(admin_client, org, content: bytes, name: str, content_type: str):
    upload = SimpleUploadedFile(name, content, content_type=content_type)
    return admin_client.post(
        reverse("campaigns:email_settings", args=[org.slug]),
        _settings_post(**{"brand-logo": upload}),
    )


def test_logo_with_too_many_pixels_is_refused_before_it_is_decoded(admin_client, org):
    out = io.BytesIO()
    Image.new("1", (13000, 13000), 1).save(out, format="PNG")
    small_file = out.getvalue()

    def never(self):
        raise AssertionError("the pixels were decoded")

    with mock.patch.object(ImageFile.ImageFile, "load", never):
        response = _upload(admin_client, org, small_file, "logo.png", "image/png")
    org.refresh_from_db()
    assert len(small_file) < 100_000
    assert LOGO_MAX_PIXELS < 13000 * 13000
    assert response.status_code == 200
    assert (
        "The logo is 13000 × 13000 pixels; upload one of at most 25 megapixels"
        in response.content.decode()
    )
    assert not org.logo
    assert org.sender_name == "Sam Sender"  # nothing of the form was saved


def test_large_jpeg_logo_is_decoded_at_a_fraction_of_its_size(admin_client, org):
    out = io.BytesIO()
    Image.new("RGB", (4800, 1600), (31, 95, 191)).save(out, format="JPEG")
    decoded = []
    convert = Image.Image.convert

    def spy(self, *args, **kwargs):
        decoded.append(self.size)
        return convert(self, *args, **kwargs)

    with mock.patch.object(Image.Image, "convert", spy):
        response = _upload(admin_client, org, out.getvalue(), "logo.jpg", "image/jpeg")
    org.refresh_from_db()
    assert response.status_code == 302
    assert decoded == [(600, 200)]  # 1/8 of each side, not 4800 x 1600
    assert (org.logo_width, org.logo_height) == (600, 200)
