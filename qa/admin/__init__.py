"""The QA review console: the Django admin for chat sessions and automation errors.

Importing the modules registers their ModelAdmins (admin autodiscovery imports `qa.admin`).
"""

from qa.admin.errors import AutomationErrorAdmin
from qa.admin.panels import Panel
from qa.admin.sessions import ChatSessionAdmin
from qa.replay.admin import ReplayAdmin
from qa.sampling.admin import SamplingRuleAdmin

__all__ = ["AutomationErrorAdmin", "ChatSessionAdmin", "Panel", "ReplayAdmin", "SamplingRuleAdmin"]
