"""The organisation's branding in campaign emails and on candidate-facing pages: its logo and
its brand colour.

An uploaded logo is opened with Pillow (anything that is not a PNG, JPEG, GIF or WebP image is
refused), shrunk to at most 600 x 200 pixels (twice the size it is shown at, for sharp high-DPI
screens) and stored as a fresh PNG under a new random name — re-encoding drops whatever else
the file carried. It is public by nature (every email shows it), so it is served without a
login at /e/b/<organization id>/<random key>.png with a long cache lifetime; the key changes
with every upload.
"""

import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import PurePosixPath

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.urls import reverse
from PIL import Image, UnidentifiedImageError

from campaigns.conf import site_url
from crm.models import Organization

LOGO_MAX_BYTES = 2 * 1024 * 1024
LOGO_MAX_SIZE = (600, 200)  # stored
LOGO_SHOWN_MAX = (240, 60)  # shown in emails and on candidate pages (CSS pixels)
LOGO_FORMATS = {"PNG", "JPEG", "GIF", "WEBP"}
# Far above any real logo (a 6000 x 4000 photo is 24 megapixels), far below what a few
# kilobytes of PNG can claim: 13000 x 13000 pixels of one colour compress to 46 KB and took
# ~1.3 GB to convert. The size is read from the file's header, before any pixel is decoded.
LOGO_MAX_PIXELS = 25_000_000
DEFAULT_LINK_COLOR = "#1f5fbf"
MIN_CONTRAST = 4.5  # WCAG AA for normal text: links on the white email card


def _luminance(color: str) -> float:
    channels = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_on_white(color: str) -> float:
    """The WCAG contrast ratio of `color` (#rrggbb) on white."""
    return round(1.05 / (_luminance(color) + 0.05), 2)


def brand_color_problem(color: str) -> str:
    """Why this colour cannot be used for links on white ("" when it can)."""
    if not color:
        return ""
    ratio = contrast_on_white(color)
    if ratio < MIN_CONTRAST:
        return (
            f"This colour is too light for links on a white background (contrast {ratio}:1; "
            f"at least {MIN_CONTRAST}:1 keeps them readable). Choose a darker shade."
        )
    return ""


def logo_png(upload) -> bytes:
    """The uploaded image as a PNG of at most LOGO_MAX_SIZE, or a ValidationError."""
    if upload.size > LOGO_MAX_BYTES:
        raise ValidationError("The logo is larger than 2 MB; upload a smaller image.")
    try:
        upload.seek(0)
        with Image.open(upload) as image:
            if image.format not in LOGO_FORMATS:
                raise ValidationError("Upload a PNG, JPEG, GIF or WebP image.")
            width, height = image.size
            if width * height > LOGO_MAX_PIXELS:
                raise ValidationError(
                    f"The logo is {width} × {height} pixels; upload one of at most "
                    f"{LOGO_MAX_PIXELS // 1_000_000} megapixels (it is shown at most "
                    f"{LOGO_SHOWN_MAX[0]} × {LOGO_SHOWN_MAX[1]})."
                )
            image.seek(0)  # the first frame of an animation
            # A JPEG decodes at 1/2, 1/4 or 1/8 of its size when that is still large enough.
            image.draft(None, LOGO_MAX_SIZE)
            converted = image.convert("RGBA")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
        raise ValidationError("This file is not an image we can read.") from error
    converted.thumbnail(LOGO_MAX_SIZE)
    out = io.BytesIO()
    converted.save(out, format="PNG", optimize=True)
    return out.getvalue()


@transaction.atomic
def organization_branding_update(
    *, organization: Organization, logo=None, remove_logo: bool = False, brand_color: str = ""
) -> Organization:
    """Set the brand colour and replace or remove the logo. The old logo file is deleted once
    the change is committed."""
    problem = brand_color_problem(brand_color)
    if problem:
        raise ValidationError({"brand_color": problem})
    organization.brand_color = brand_color.lower()
    old_name = organization.logo.name if organization.logo else ""
    if logo is not None:
        content = logo_png(logo)
        organization.logo.save("logo.png", ContentFile(content), save=False)
    elif remove_logo and old_name:
        organization.logo = None
        organization.logo_width = organization.logo_height = None
    organization.save(update_fields=["brand_color", "logo", "logo_width", "logo_height"])
    new_name = organization.logo.name if organization.logo else ""
    if old_name and old_name != new_name:
        storage = organization.logo.storage
        transaction.on_commit(lambda: storage.delete(old_name))
    return organization


def logo_key(organization: Organization) -> str:
    return PurePosixPath(organization.logo.name).stem if organization.logo else ""


@dataclass(frozen=True)
class Brand:
    """What the email layout and candidate pages need: plain values, no model."""

    name: str
    logo_url: str  # absolute (emails are read far from our site); "" without a logo
    logo_width: int
    logo_height: int
    color: str  # links and the accent line; "" for the default look


@lru_cache(maxsize=1024)
def _logo_path(organization_id: int, key: str) -> str:
    return reverse("campaigns_public:logo", args=[organization_id, key])


def brand_for(organization: Organization) -> Brand:
    """The organisation's brand (called for every message the dispatcher renders: no query)."""
    url, width, height = "", 0, 0
    if organization.logo and organization.logo_width and organization.logo_height:
        url = site_url() + _logo_path(organization.pk, logo_key(organization))
        scale = min(
            LOGO_SHOWN_MAX[0] / organization.logo_width,
            LOGO_SHOWN_MAX[1] / organization.logo_height,
            1,
        )
        width = max(1, round(organization.logo_width * scale))
        height = max(1, round(organization.logo_height * scale))
    return Brand(
        name=organization.name,
        logo_url=url,
        logo_width=width,
        logo_height=height,
        color=organization.brand_color,
    )
