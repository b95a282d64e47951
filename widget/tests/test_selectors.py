"""The site reads other apps use (the dashboard reads sites only through these)."""

import pytest

from widget import selectors
from widget.tests.factories import SiteFactory

pytestmark = pytest.mark.django_db


def test_sites_for_embed_leaves_out_inactive_sites_and_stops_at_the_limit():
    SiteFactory(name="Off", is_active=False)
    for name in ("A", "B", "C"):
        SiteFactory(name=name)
    sites = selectors.sites_for_embed(limit=2)
    assert [site.name for site in sites] == ["A", "B"]


def test_sites_for_filter_lists_every_site_by_name_inactive_too():
    for name in ("Zeta", "Alpha"):
        SiteFactory(name=name)
    SiteFactory(name="Mid", is_active=False)
    assert [site.name for site in selectors.sites_for_filter()] == ["Alpha", "Mid", "Zeta"]
