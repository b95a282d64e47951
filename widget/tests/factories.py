import factory

from widget.models import Site


class SiteFactory(factory.django.DjangoModelFactory[Site]):
    class Meta:
        model = Site

    name = factory.Sequence(lambda n: f"Landing page {n}")
    # The tests' sites show their name to visitors unless a test says otherwise.
    public_title = factory.SelfAttribute("name")
    public_key = factory.Sequence(lambda n: f"site-key-{n}")
    allowed_origins = factory.LazyFunction(lambda: ["https://landing.example.com"])
    greeting = "Hi! How can we help?"
