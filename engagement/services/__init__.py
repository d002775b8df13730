"""Temporary: `engagement/services.py` moved to `engagement/services/projects.py` so that
its history follows the largest part; the next commit splits it by sub-domain and
removes this re-export."""

from engagement.services.projects import *  # noqa: F403
from engagement.services.projects import _step_complete, _who  # noqa: F401
