import secrets

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models


def generate_site_key() -> str:
    return secrets.token_urlsafe(12)


class AgentBackend(models.TextChoices):
    SCRIPTED = "scripted", "Scripted (built in)"
    N8N = "n8n", "n8n chat webhook"
    OPENAI = "openai", "OpenAI-compatible"


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
    greeting = models.TextField(default="Hi! 👋 How can we help you today?")
    theme_color = models.CharField(
        max_length=7,
        default="#0d6efd",
        validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$", "Use a hex colour like #0d6efd.")],
    )
    agent_backend = models.CharField(
        max_length=16, choices=AgentBackend.choices, default=AgentBackend.SCRIPTED
    )
    # Non-secret backend settings (URL, model, system prompt, ...); secrets live in agent_secret.
    agent_config = models.JSONField(default=dict, blank=True)
    agent_secret = models.CharField(max_length=500, blank=True, default="")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from leadchat.outbound import url_problem
        from widget.origins import normalize_origin

        errors: dict[str, str] = {}
        origins = self.allowed_origins
        if not isinstance(origins, list) or any(
            not isinstance(o, str) or normalize_origin(o) is None for o in origins
        ):
            errors["allowed_origins"] = (
                "A list of origins like https://www.example.com (scheme, host, port only)."
            )
        config = self.agent_config
        if not isinstance(config, dict):
            errors["agent_config"] = "A JSON object."
        elif self.agent_backend == AgentBackend.N8N:
            webhook_url = str(config.get("webhook_url", ""))
            if not webhook_url.startswith(("http://", "https://")):
                errors["agent_config"] = 'n8n needs "webhook_url": the Chat Trigger URL.'
            elif problem := url_problem(webhook_url):
                errors["agent_config"] = f'"webhook_url" {problem}.'
        elif self.agent_backend == AgentBackend.OPENAI:
            base_url = str(config.get("base_url", "https://api.openai.com/v1"))
            if not base_url.startswith(("http://", "https://")) or not config.get("model"):
                errors["agent_config"] = (
                    'OpenAI-compatible needs "model" (and "base_url" unless it is OpenAI).'
                )
            elif "base_url" in config and (problem := url_problem(base_url)):
                errors["agent_config"] = f'"base_url" {problem}.'
        if errors:
            raise ValidationError(errors)
