import factory

from accounts.models import User
from accounts.services import user_set_role

TEST_PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password(TEST_PASSWORD)
    role = "agent"

    @factory.post_generation
    def sync_role(obj: User, create: bool, extracted, **kwargs) -> None:
        if create:
            user_set_role(user=obj, role=obj.role)
