"""Temporary: `triage/services.py` moved to `triage/services/issues.py` so that its history
follows the largest part; the next commit splits it by sub-domain and removes this
re-export."""

from triage.services.issues import *  # noqa: F403
from triage.services.issues import _reason_text  # noqa: F401
