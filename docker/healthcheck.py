"""Docker HEALTHCHECK of the web container: GET /healthz the way the reverse proxy sends it.

Production settings reject hosts outside ALLOWED_HOSTS and redirect plain HTTP to HTTPS, so the
probe names the site's host and the scheme a TLS-terminating proxy would forward. Healthy means
HTTP 200: the database and Redis answer (a stale worker is reported by /healthz, not fatal).
"""

import http.client
import os
import sys
from urllib.parse import urlparse


def main() -> int:
    site = urlparse(os.environ.get("SITE_URL", "http://localhost"))
    connection = http.client.HTTPConnection("127.0.0.1", 8000, timeout=5)
    try:
        connection.request(
            "GET",
            "/healthz",
            headers={"Host": site.hostname or "localhost", "X-Forwarded-Proto": site.scheme},
        )
        response = connection.getresponse()
        print(response.status, response.read(500).decode(errors="replace"))
    except OSError as error:
        print(f"/healthz unreachable: {error}")
        return 1
    finally:
        connection.close()
    return 0 if response.status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
