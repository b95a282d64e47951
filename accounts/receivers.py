"""What accounts listens to (connected in AccountsConfig.ready)."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from accounts.models import User
from accounts.services import api_tokens_revoke


@receiver(post_save, sender=User, dispatch_uid="accounts.revoke_api_tokens")
def revoke_api_tokens_on_password_change_or_deactivation(
    sender: type[User], instance: User, created: bool, **kwargs: Any
) -> None:
    """A new password or a deactivated account ends every API token of the user.

    A post_save receiver rather than a call in one service: a password changes through paths
    Django owns (the dashboard's password form, the admin's password form, `changepassword`,
    `set_password()` in a shell), and the one point they all pass is the save with a new
    password pending (`_password`, set by set_password and cleared by AbstractBaseUser.save only
    after post_save). A leaked token must not outlive the password reset meant to lock its
    holder out. Deactivation revokes too: knox already refuses an inactive user's token, but
    reactivating the account must not bring the old tokens back; nor may an unusable password
    (the admin's "disable password-based authentication").
    """
    if created:
        return
    password_changed = getattr(instance, "_password", None) is not None
    if password_changed or not instance.is_active or not instance.has_usable_password():
        api_tokens_revoke(user=instance)
