"""The tracking links of a rendered campaign email, as paths a test client can request."""

import re


def tracked_path(url: str) -> str:
    return url.removeprefix("https://rapport.example.com")


def pixel_path(message) -> str:
    return tracked_path(re.search(r'<img src="([^"]+/e/o/[^"]+)"', message.html)[1])


def click_paths(message) -> list[str]:
    return [tracked_path(url) for url in re.findall(r'href="([^"]+/e/c/[^"]+)"', message.html)]


def trap_path(message) -> str:
    return tracked_path(
        re.search(r'<a href="([^"]+/e/c/[^"]+)" aria-hidden="true"', message.html)[1]
    )
