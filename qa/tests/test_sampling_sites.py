"""A site's own sampling rule, in place of the global one for its sessions (on a fake clock)."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone

from qa.sampling.models import SessionSample, SiteSamplingRule
from qa.sampling.services import (
    rule_for_site,
    sampling_rule_save,
    sessions_sample,
    site_sampling_rule_delete,
    site_sampling_rule_save,
)
from qa.tests.conftest import login
from qa.tests.test_sampling import chat
from widget.tests.factories import SiteFactory

pytestmark = pytest.mark.django_db

IDLE = timedelta(minutes=30)
NO_RULES = {"automation_errors": False, "needs_human": False, "email_incomplete": False}


@pytest.fixture(autouse=True)
def _idle(settings):
    settings.SESSION_IDLE_TIMEOUT_MINUTES = 30


def decided(session) -> tuple[bool, list[str], int]:
    sample = SessionSample.objects.get(session=session)
    return sample.sampled, sample.reasons, sample.random_percent


def test_a_sites_own_rule_replaces_the_global_one_for_its_sessions(admin_role_user):
    busy, new, plain = SiteFactory(name="Busy"), SiteFactory(name="New"), SiteFactory(name="Plain")
    # Global: nothing at random, keyword "refund".
    sampling_rule_save(by=admin_role_user, keywords="refund", random_percent=0, **NO_RULES)
    # Busy: its own keyword only, nothing at random; New: everything.
    site_sampling_rule_save(
        by=admin_role_user, site=busy, keywords="cancel", random_percent=0, **NO_RULES
    )
    site_sampling_rule_save(
        by=admin_role_user, site=new, keywords="", random_percent=100, **NO_RULES
    )
    busy_refund = chat(busy, "I want a refund")
    busy_cancel = chat(busy, "Cancel my order")
    new_plain = chat(new, "Hello")
    plain_refund = chat(plain, "refund please")
    plain_cancel = chat(plain, "cancel please")
    clock = timezone.now() + IDLE + timedelta(minutes=1)
    assert sessions_sample(now=clock) == 5
    assert decided(busy_refund) == (False, [], 0)  # the global keyword is not Busy's
    assert decided(busy_cancel) == (True, ["keyword:cancel"], 0)
    assert decided(new_plain) == (True, ["random"], 100)
    assert decided(plain_refund) == (True, ["keyword:refund"], 0)
    assert decided(plain_cancel) == (False, [], 0)


def test_deleting_a_sites_rule_puts_it_back_on_the_global_rule(admin_role_user):
    site = SiteFactory()
    sampling_rule_save(by=admin_role_user, keywords="", random_percent=40, **NO_RULES)
    site_sampling_rule_save(
        by=admin_role_user, site=site, keywords="", random_percent=5, **NO_RULES
    )
    assert rule_for_site(site.pk).random_percent == 5
    assert site_sampling_rule_delete(by=admin_role_user, site=site) is True
    assert rule_for_site(site.pk).random_percent == 40
    assert site_sampling_rule_delete(by=admin_role_user, site=site) is False


def test_only_admins_set_a_sites_rule(qa_user, admin_role_user):
    site = SiteFactory()
    with pytest.raises(PermissionDenied):
        site_sampling_rule_save(by=qa_user, site=site, keywords="", random_percent=5, **NO_RULES)
    with pytest.raises(ValueError, match="0 to 100"):
        site_sampling_rule_save(
            by=admin_role_user, site=site, keywords="", random_percent=101, **NO_RULES
        )
    site_sampling_rule_save(
        by=admin_role_user, site=site, keywords="", random_percent=5, **NO_RULES
    )
    with pytest.raises(PermissionDenied):
        site_sampling_rule_delete(by=qa_user, site=site)
    assert SiteSamplingRule.objects.get(site=site).random_percent == 5


def test_sampling_queries_do_not_grow_with_the_sites(
    admin_role_user, django_assert_max_num_queries
):
    sites = [SiteFactory() for _ in range(6)]
    for site in sites[:3]:
        site_sampling_rule_save(
            by=admin_role_user, site=site, keywords="refund", random_percent=50, **NO_RULES
        )
    for site in sites:
        chat(site, "Hello")
        chat(site, "A refund?")
    clock = timezone.now() + IDLE + timedelta(minutes=1)
    # candidates, global rule, site rules, errors, one keyword search, existing, the insert
    # (and its savepoint): the same for 2 sites or 200.
    with django_assert_max_num_queries(10):
        assert sessions_sample(now=clock) == 12
    reasons = [sample.reasons for sample in SessionSample.objects.all()]
    # The three sites with a rule of their own: their "A refund?" sessions by the keyword, their
    # others not at all (outside 50%, or in it); the global rule's sites: all at random.
    assert sum(r == ["keyword:refund"] for r in reasons) == 3
    assert sum(r == ["random"] for r in reasons) >= 6


def test_site_rules_in_the_console_for_admins_only(client, admin_role_user, qa_user):
    site = SiteFactory(name="Busy shop")
    admin = login(client, admin_role_user)
    response = admin.post(
        reverse("admin:qa_sitesamplingrule_add"),
        {"site": site.pk, "keywords": "refund\nrefund\ncancel", "random_percent": "10"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    rule = SiteSamplingRule.objects.get()
    assert (rule.site, rule.random_percent, rule.keyword_list, rule.updated_by) == (
        site,
        10,
        ["refund", "cancel"],
        admin_role_user,
    )
    listing = admin.get(reverse("admin:qa_sitesamplingrule_changelist")).content.decode()
    assert "Busy shop" in listing
    bad = admin.post(
        reverse("admin:qa_sitesamplingrule_change", args=[rule.pk]),
        {"keywords": "", "random_percent": "150"},
    )
    assert bad.status_code == 200 and "less than or equal to 100" in bad.content.decode()
    again = admin.post(
        reverse("admin:qa_sitesamplingrule_add"), {"site": site.pk, "random_percent": "20"}
    )
    assert again.status_code == 200  # one rule per site: the form says so
    assert "already exists" in again.content.decode()
    removed = admin.post(
        reverse("admin:qa_sitesamplingrule_delete", args=[rule.pk]), {"post": "yes"}
    )
    assert removed.status_code == 302 and not SiteSamplingRule.objects.exists()
    client.logout()
    reviewer = login(client, qa_user)
    assert reviewer.get(reverse("admin:qa_sitesamplingrule_changelist")).status_code == 403
