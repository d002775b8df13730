"""Error pages and reports without secrets (issue 13: with DEBUG=1 the error page showed
SALESFORCE_SESSION_ID and the password inside DATABASE_URL)."""

from __future__ import annotations

import re

from django.views.debug import SafeExceptionReporterFilter


class SecretSettingsFilter(SafeExceptionReporterFilter):
    # Django's own list (API, TOKEN, KEY, SECRET, PASS, SIGNATURE, HTTP_COOKIE), plus the
    # Salesforce session, the URLs of the database, Redis and the broker (they carry
    # passwords) and the LOCATION of the cache.
    hidden_settings = re.compile(
        "API|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|SESSION|DATABASE_URL|REDIS_URL|"
        "BROKER|RESULT_BACKEND|LOCATION|DSN",
        flags=re.IGNORECASE,
    )
