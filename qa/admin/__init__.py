"""The QA review console: the Django admin for chat sessions and automation errors.

Importing the modules registers their ModelAdmins (admin autodiscovery imports `qa.admin`).
"""

from qa.admin.errors import AutomationErrorAdmin
from qa.admin.panels import Panel
from qa.admin.sessions import ChatSessionAdmin
from qa.replay.admin import ReplayAdmin
from qa.sampling.admin import SamplingRuleAdmin, SiteSamplingRuleAdmin
from qa.scorecards.admin import CriterionAdmin, FailureCategoryAdmin

__all__ = [
    "AutomationErrorAdmin",
    "ChatSessionAdmin",
    "CriterionAdmin",
    "FailureCategoryAdmin",
    "Panel",
    "ReplayAdmin",
    "SamplingRuleAdmin",
    "SiteSamplingRuleAdmin",
]
