import factory

from widget.models import Site


class SiteFactory(factory.django.DjangoModelFactory[Site]):
    class Meta:
        model = Site

    name = factory.Sequence(lambda n: f"Landing page {n}")
    public_key = factory.Sequence(lambda n: f"site-key-{n}")
    allowed_origins = factory.LazyFunction(lambda: ["https://landing.example.com"])
    greeting = "Hi! How can we help?"
