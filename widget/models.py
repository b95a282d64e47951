import secrets
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator, validate_email
from django.db import models
from django.utils.translation import gettext

from leadchat.http_urls import is_http_url


def email_list(text: str) -> list[str]:
    """The addresses of a list typed one per line or separated by commas."""
    return [part.strip() for part in text.replace(",", "\n").splitlines() if part.strip()]


def validate_email_list(text: str) -> None:
    for address in email_list(text):
        try:
            validate_email(address)
        except ValidationError:
            raise ValidationError(f"{address[:100]!r} is not an email address.") from None


def generate_site_key() -> str:
    return secrets.token_urlsafe(12)


class BackendName(models.TextChoices):
    SCRIPTED = "scripted", "Scripted (built in)"
    N8N = "n8n", "n8n chat webhook"
    OPENAI = "openai", "OpenAI-compatible"


class SiteLanguage(models.TextChoices):
    """The languages of the widget's texts and the scripted agent (locale/<code>/LC_MESSAGES)."""

    EN = "en", "English"
    ES = "es", "Español"
    PT = "pt", "Português"
    FR = "fr", "Français"
    DE = "de", "Deutsch"


class SiteTheme(models.TextChoices):
    AUTO = "auto", "Follow the visitor's system (light or dark)"
    LIGHT = "light", "Always light"
    DARK = "dark", "Always dark"


class Site(models.Model):
    """A landing page or website that embeds the widget."""

    name = models.CharField(max_length=200)
    public_key = models.CharField(
        max_length=64, unique=True, default=generate_site_key, help_text="Used in the embed line."
    )
    allowed_origins = models.JSONField(
        default=list,
        blank=True,
        help_text="Origins (scheme://host[:port]) allowed to embed the widget and call its API.",
    )
    # What the visitor reads (issue 16): the internal name never reaches the widget.
    public_title = models.CharField(
        max_length=80,
        blank=True,
        default="",
        help_text="The widget's header, e.g. 'Acme Solar'. Empty: 'Chat with us' in the site's "
        "language (the internal name above is never shown to visitors).",
    )
    language = models.CharField(
        max_length=5,
        choices=SiteLanguage.choices,
        default=SiteLanguage.EN,
        help_text="The widget's texts and the scripted agent's lines, whatever the visitor's "
        "browser says. Write the greeting, the privacy and contact lines in it too.",
    )
    greeting = models.TextField(
        blank=True,
        default="",
        help_text="The agent's first message. Empty: 'Hi! 👋 How can we help you today?' in the "
        "site's language.",
    )
    theme = models.CharField(
        max_length=8,
        choices=SiteTheme.choices,
        default=SiteTheme.AUTO,
        help_text="Light or dark widget; 'auto' follows the visitor's system setting.",
    )
    greeting_bubble_seconds = models.PositiveSmallIntegerField(
        "greeting bubble after (seconds)",
        null=True,
        blank=True,
        default=None,
        help_text="Show the greeting in a small bubble beside the launcher after this many "
        "seconds on the page (once per browser session; not after the visitor closed it or "
        "opened the chat). Empty or 0: no bubble.",
    )
    theme_color = models.CharField(
        max_length=7,
        default="#0d6efd",
        validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$", "Use a hex colour like #0d6efd.")],
    )
    agent_backend = models.CharField(
        max_length=16, choices=BackendName.choices, default=BackendName.SCRIPTED
    )
    # Non-secret backend settings (URL, model, system prompt, ...); secrets live in agent_secret.
    agent_config = models.JSONField(default=dict, blank=True)
    agent_secret = models.CharField(max_length=500, blank=True, default="")
    # AI budgets (widget.budget): beyond one, the visitor gets the polite fallback and the
    # scripted lead questions without the backend being called. Empty means no limit; 0 means
    # the backend is never called. The defaults cap what one anonymous visitor (or a script
    # posting through the iframe) can spend; raise them for a busy site.
    ai_session_token_budget = models.PositiveIntegerField(
        "tokens per session",
        null=True,
        blank=True,
        default=20_000,
        help_text="Tokens one conversation may use (backends that report usage: "
        "OpenAI-compatible). Empty: no limit.",
    )
    ai_daily_token_budget = models.PositiveBigIntegerField(
        "tokens per day",
        null=True,
        blank=True,
        default=500_000,
        help_text="Tokens all conversations of this site may use per day (TIME_ZONE's calendar "
        "day). Empty: no limit.",
    )
    ai_session_message_budget = models.PositiveIntegerField(
        "backend calls per session",
        null=True,
        blank=True,
        default=40,
        help_text="Visitor messages one conversation may send to a network backend (n8n, and "
        "OpenAI-compatible too, whose usage some local servers do not report). Empty: no limit.",
    )
    ai_daily_message_budget = models.PositiveIntegerField(
        "backend calls per day",
        null=True,
        blank=True,
        default=2_000,
        help_text="Visitor messages all conversations of this site may send to a network "
        "backend per day. Empty: no limit.",
    )
    ai_price_per_1k_tokens = models.DecimalField(
        "price per 1,000 tokens",
        max_digits=12,
        decimal_places=6,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="What 1,000 tokens cost you (one currency for all sites): the dashboard's "
        "AI cost per lead.",
    )
    # Facebook Messenger (widget.channels.messenger): the page whose conversations this site
    # answers, and its page access token (write-only in the admin; `env:NAME` reads it from the
    # environment, as agent secrets).
    messenger_page_id = models.CharField(
        "Facebook page id",
        max_length=64,
        blank=True,
        default="",
        validators=[RegexValidator(r"^[0-9]+$", "A Facebook page id is digits only.")],
    )
    messenger_page_token = models.CharField(max_length=500, blank=True, default="")
    # When a person can answer (widget.handoff): outside these hours a visitor who asks for
    # one is told the team will write back by email. No times set: always open.
    opening_days = models.JSONField(
        default=list,
        blank=True,
        help_text='Days the team answers, e.g. ["mon", "tue", "wed", "thu", "fri"]. Empty with '
        "times set: every day.",
    )
    opens_at = models.TimeField(null=True, blank=True, help_text="e.g. 09:00. Empty: always open.")
    closes_at = models.TimeField(
        null=True, blank=True, help_text="e.g. 17:30 (before opens_at: open past midnight)."
    )
    hours_timezone = models.CharField(
        "opening hours time zone",
        max_length=64,
        blank=True,
        default="",
        help_text="IANA name, e.g. Europe/Madrid. Empty: the server's TIME_ZONE.",
    )
    # Who hears of a visitor waiting for a person (HANDOFF_EMAIL_AFTER_MINUTES).
    notify_emails = models.JSONField(
        default=list,
        blank=True,
        help_text="Addresses emailed when a visitor waits for a person, "
        'e.g. ["sales@example.com"].',
    )
    # Told of every QA issue flagged on this site's sessions, beside QA_NOTIFY_EMAILS.
    developer_emails = models.TextField(
        blank=True,
        default="",
        validators=[validate_email_list],
        help_text="Developers told of each QA issue on this site's conversations (one address "
        "per line or comma-separated), beside QA_NOTIFY_EMAILS.",
    )
    # Meta's "Human Agent" permission (granted to the app in its App Review): an agent's reply may
    # then go out up to 7 days after the person's last message (the HUMAN_AGENT tag) instead of 24
    # hours. Without the permission Meta refuses tagged messages, so it is off unless granted.
    messenger_human_agent_tag = models.BooleanField(
        "Messenger: Human Agent permission",
        default=False,
        help_text="The app has Meta's Human Agent permission: agents may reply up to 7 days "
        "after the person's last message (otherwise 24 hours).",
    )
    # Lead quality (sessions_app.email_quality, widget.backends.scripted): what the site refuses
    # and what it tells visitors. Off, a no-MX or disposable address is stored and flagged.
    email_refuse_no_mx = models.BooleanField(
        "refuse emails whose domain takes no mail",
        default=False,
        help_text="The agent asks again, saying why. Off: stored and flagged as no_mx.",
    )
    email_refuse_disposable = models.BooleanField(
        "refuse disposable emails",
        default=False,
        help_text="Throwaway services (mailinator.com, ...). Off: stored and flagged.",
    )
    phone_default_region = models.CharField(
        "default phone region",
        max_length=2,
        blank=True,
        default="",
        help_text="Two-letter country code (PT, US) for phone numbers given without +country "
        "code. Empty: only international numbers (+351 ...) are taken.",
    )
    contact_line = models.CharField(
        max_length=500,
        blank=True,
        default="",
        help_text="Offered to a visitor who twice declines to leave an email, e.g. 'Call us on "
        "+1 555 0100, 9-17 on weekdays.'",
    )
    privacy_text = models.CharField(
        "privacy line",
        max_length=500,
        blank=True,
        default="",
        help_text="Shown before the email is asked, e.g. 'We use your email only to reply to "
        "you.' The exact text shown is stored with the lead.",
    )
    privacy_url = models.URLField("privacy policy link", max_length=500, blank=True, default="")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            # Meta's events are routed to a site by page id: one site per page.
            models.UniqueConstraint(
                fields=["messenger_page_id"],
                condition=~models.Q(messenger_page_id=""),
                name="site_unique_messenger_page",
                violation_error_message="Another site already has this Facebook page id "
                "(one site per page).",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def developer_email_list(self) -> list[str]:
        return email_list(self.developer_emails)

    @property
    def privacy_line(self) -> str:
        """The consent line as the visitor reads it (text, then the policy's address)."""
        parts = [self.privacy_text.strip()]
        if self.privacy_url:
            parts.append(gettext("Privacy policy: %(url)s") % {"url": self.privacy_url})
        return " ".join(p for p in parts if p)

    def clean(self) -> None:
        import phonenumbers

        from leadchat.outbound import url_problem
        from widget.origins import normalize_origin

        errors: dict[str, str] = {}
        region = (self.phone_default_region or "").upper()
        self.phone_default_region = region
        if region and region not in phonenumbers.SUPPORTED_REGIONS:
            errors["phone_default_region"] = "A two-letter country code, like PT, US or DE."
        if self.privacy_url and not is_http_url(self.privacy_url):
            errors["privacy_url"] = "An http(s) address."
        origins = self.allowed_origins
        if not isinstance(origins, list) or any(
            not isinstance(o, str) or normalize_origin(o) is None for o in origins
        ):
            errors["allowed_origins"] = (
                "A list of origins like https://www.example.com (scheme, host, port only)."
            )
        errors.update(_handoff_problems(self))
        config = self.agent_config
        if not isinstance(config, dict):
            errors["agent_config"] = "A JSON object."
        elif self.agent_backend == BackendName.N8N:
            webhook_url = str(config.get("webhook_url", ""))
            if not is_http_url(webhook_url):
                errors["agent_config"] = 'n8n needs "webhook_url": the Chat Trigger URL.'
            elif problem := url_problem(webhook_url):
                errors["agent_config"] = f'"webhook_url" {problem}.'
            elif problem := _n8n_auth_problem(config, self.agent_secret):
                errors["agent_config"] = problem
        elif self.agent_backend == BackendName.OPENAI:
            base_url = str(config.get("base_url", "https://api.openai.com/v1"))
            if not is_http_url(base_url) or not config.get("model"):
                errors["agent_config"] = (
                    'OpenAI-compatible needs "model" (and "base_url" unless it is OpenAI).'
                )
            elif "base_url" in config and (problem := url_problem(base_url)):
                errors["agent_config"] = f'"base_url" {problem}.'
        if errors:
            raise ValidationError(errors)


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # date.weekday() order


def _handoff_problems(site: Site) -> dict[str, str]:
    """What is wrong with the site's opening hours and notify list (Site.clean)."""
    from django.core.validators import validate_email

    from widget.handoff import time_zone_named

    errors: dict[str, str] = {}
    days = site.opening_days
    if not isinstance(days, list) or any(d not in WEEKDAYS for d in days):
        errors["opening_days"] = f"A list of days from: {', '.join(WEEKDAYS)}."
    if (site.opens_at is None) != (site.closes_at is None):
        errors["closes_at"] = "Set both times, or neither (always open)."
    elif site.opens_at is not None and site.opens_at == site.closes_at:
        errors["closes_at"] = "Closing time equals opening time; leave both empty for always open."
    if site.hours_timezone and time_zone_named(site.hours_timezone) is None:
        errors["hours_timezone"] = "Unknown time zone; use an IANA name like Europe/Madrid."
    emails = site.notify_emails
    if not isinstance(emails, list) or not all(isinstance(e, str) for e in emails):
        errors["notify_emails"] = 'A list of email addresses, e.g. ["sales@example.com"].'
    else:
        for address in emails:
            try:
                validate_email(address)
            except ValidationError:
                errors["notify_emails"] = f"Not an email address: {address[:100]!r}."
                break
    return errors


def _n8n_auth_problem(config: dict[str, Any], secret: str) -> str | None:
    """Why the n8n backend's credentials cannot work, or None (widget.backends.n8n)."""
    if "basic_auth_user" not in config:
        return None
    user = config["basic_auth_user"]
    if not isinstance(user, str) or not user or ":" in user:
        return '"basic_auth_user" is the Chat Trigger\'s Basic Auth user: text without ":".'
    if "auth_header" in config:
        return (
            'Use "basic_auth_user" (n8n\'s Chat Trigger) or "auth_header" (a Webhook node\'s '
            "Header Auth, or a proxy), not both: the agent secret is one value."
        )
    if not secret:
        return '"basic_auth_user" needs the Basic Auth password as the agent secret.'
    return None


class SiteDailyUsage(models.Model):
    """What one site's AI backend used on one day, counted in the database (widget.budget).

    One row per site and day, created by an INSERT that ignores the conflict and counted with
    conditional UPDATEs, so concurrent requests in every web process see one total; a
    per-process cache would let each gunicorn worker spend the whole budget again.
    """

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="daily_usage")
    day = models.DateField()
    ai_calls = models.PositiveIntegerField("backend calls", default=0)
    ai_tokens = models.PositiveBigIntegerField("tokens", default=0)
    budget_replies = models.PositiveIntegerField(
        "budget fallbacks", default=0, help_text="Replies given without the backend."
    )
    # Set by the request that first met a budget that day: it alone records the admin's
    # automation error, so a spent budget is one error per day, not one per message.
    budget_alerted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-day", "site"]
        verbose_name = "AI usage per day"
        verbose_name_plural = "AI usage per day"
        constraints = [
            models.UniqueConstraint(fields=["site", "day"], name="site_daily_usage_unique_day")
        ]

    def __str__(self) -> str:
        return f"{self.site} on {self.day}"


# The Messenger channel's tables belong to this app (see widget.channels.messenger).
from widget.channels.messenger.models import (  # noqa: E402
    MessengerContact,
    MessengerInboxEvent,
)

__all__ = ["BackendName", "MessengerContact", "MessengerInboxEvent", "Site", "SiteDailyUsage"]
