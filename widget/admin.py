"""Site admin: create and edit widget sites, with the embed snippet ready to copy.

The agent secret is write-only here: the form never renders it back, the change page shows only
its last characters, and QA reviewers (view permission) see the same mask.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.validators import validate_email
from django.http import HttpRequest, HttpResponseBase, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from widget.agent_secrets import ENV_PREFIX, env_name, env_name_problem
from widget.models import WEEKDAYS, MessengerInboxEvent, Site, SiteDailyUsage
from widget.origins import normalize_origin

# A visitor asking for a person (widget.handoff): when the team answers, and who hears of it.
HANDOFF_FIELDS = ["opening_days", "opens_at", "closes_at", "hours_timezone"]
BUDGET_FIELDS = [
    "ai_session_token_budget",
    "ai_daily_token_budget",
    "ai_session_message_budget",
    "ai_daily_message_budget",
    "ai_price_per_1k_tokens",
]
# What the visitor sees (issue 16): the header, the language, light or dark, the greeting bubble.
LOOK_FIELDS = [
    "public_title",
    "language",
    "greeting",
    "greeting_bubble_seconds",
    "theme",
    "theme_color",
]
LEAD_QUALITY_FIELDS = [
    "email_refuse_no_mx",
    "email_refuse_disposable",
    "phone_default_region",
    "privacy_text",
    "privacy_url",
    "contact_line",
]


def mask_secret(secret: str) -> str:
    if not secret:
        return "(none)"
    name = env_name(secret)
    if name is not None:
        if env_name_problem(name):
            return f"env:{name} (NOT READ: only {ENV_PREFIX}... variables are allowed)"
        return f"read from the environment variable {name}"
    if len(secret) < 12:
        return "set (hidden)"
    return f"••••••••{secret[-4:]}"


class SiteAdminForm(forms.ModelForm):
    origins_text = forms.CharField(
        label="Allowed origins",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="One per line, like https://www.example.com (scheme, host and port only). "
        "Only these pages may show the widget and call its API. Empty: nowhere.",
    )
    new_secret = forms.CharField(
        label="New agent secret",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="n8n: the Chat Trigger's Basic Auth password (with basic_auth_user), or the "
        "auth_header's value. OpenAI-compatible: the API key. Leave empty to "
        f"keep the current one. Write env:{ENV_PREFIX}NAME to read it from that environment "
        "variable instead (only variables with this prefix, or OPENAI_API_KEY, are read).",
    )
    clear_secret = forms.BooleanField(label="Remove the agent secret", required=False)
    new_page_token = forms.CharField(
        label="New page access token",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="The Facebook page's access token (Meta app dashboard > Messenger > "
        "Access tokens). Leave empty to keep the current one. "
        f"env:{ENV_PREFIX}NAME reads it from that environment variable instead.",
    )
    clear_page_token = forms.BooleanField(label="Remove the page access token", required=False)
    opening_days = forms.MultipleChoiceField(
        choices=[(day, day.capitalize()) for day in WEEKDAYS],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Days the team answers. None ticked, with times set: every day.",
    )
    notify_text = forms.CharField(
        label="Notify emails",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="One address per line: told when a visitor waits for a person longer than "
        "HANDOFF_EMAIL_AFTER_MINUTES. Empty: nobody is emailed.",
    )

    class Meta:
        model = Site
        fields = [
            "name",
            "is_active",
            *LOOK_FIELDS,
            "agent_backend",
            "agent_config",
            *BUDGET_FIELDS,
            *LEAD_QUALITY_FIELDS,
            "messenger_page_id",
            *HANDOFF_FIELDS,
            "developer_emails",
            "messenger_human_agent_tag",
        ]
        widgets = {
            "opens_at": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "closes_at": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "theme_color": forms.TextInput(attrs={"type": "color"}),
            "greeting": forms.Textarea(attrs={"rows": 2, "cols": 60}),
            "developer_emails": forms.Textarea(attrs={"rows": 2, "cols": 60}),
        }
        help_texts = {
            "agent_config": (
                'scripted: {"quick_replies": ["Pricing", "Book a demo"]}. '
                'n8n: {"webhook_url": "https://n8n.example.com/webhook/…/chat", '
                '"basic_auth_user": "leadchat"} (the Chat Trigger\'s Basic Auth; '
                '"auth_header": "X-N8N-Auth" instead for a Webhook node\'s Header Auth or a '
                'proxy). OpenAI-compatible: {"base_url": '
                '"https://api.openai.com/v1", "model": "gpt-4o-mini", "system_prompt": "…"}.'
            )
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and isinstance(self.instance.allowed_origins, list):
            self.fields["origins_text"].initial = "\n".join(self.instance.allowed_origins)
        if self.instance.pk and isinstance(self.instance.notify_emails, list):
            self.fields["notify_text"].initial = "\n".join(self.instance.notify_emails)

    def clean_origins_text(self) -> list[str]:
        origins: list[str] = []
        for line in self.cleaned_data["origins_text"].splitlines():
            if not line.strip():
                continue
            origin = normalize_origin(line)
            if origin is None:
                raise forms.ValidationError(
                    f"{line.strip()!r} is not an origin: use scheme://host[:port], "
                    "like https://www.example.com, with no path."
                )
            if origin not in origins:
                origins.append(origin)
        return origins

    def clean_new_secret(self) -> str:
        secret = self.cleaned_data["new_secret"]
        name = env_name(secret)
        if name is not None and (problem := env_name_problem(name)):
            raise forms.ValidationError(problem)
        return secret

    def clean_new_page_token(self) -> str:
        token = self.cleaned_data["new_page_token"]
        name = env_name(token)
        if name is not None and (problem := env_name_problem(name)):
            raise forms.ValidationError(problem)
        return token

    def clean_notify_text(self) -> list[str]:
        lines = self.cleaned_data["notify_text"].replace(",", "\n").splitlines()
        addresses = list(dict.fromkeys(line.strip() for line in lines if line.strip()))
        for address in addresses:
            try:
                validate_email(address)
            except forms.ValidationError:
                raise forms.ValidationError(f"{address[:100]!r} is not an email address.") from None
        return addresses

    def _post_clean(self) -> None:
        # Put the derived values on the instance before the model's clean() validates it.
        if "origins_text" in self.cleaned_data:
            self.instance.allowed_origins = self.cleaned_data["origins_text"]
        if "notify_text" in self.cleaned_data:
            self.instance.notify_emails = self.cleaned_data["notify_text"]
        if self.cleaned_data.get("clear_secret"):
            self.instance.agent_secret = ""
        elif self.cleaned_data.get("new_secret"):
            self.instance.agent_secret = self.cleaned_data["new_secret"]
        if self.cleaned_data.get("clear_page_token"):
            self.instance.messenger_page_token = ""
        elif self.cleaned_data.get("new_page_token"):
            self.instance.messenger_page_token = self.cleaned_data["new_page_token"]
        # ModelForm's private hook between the form's and the model's validation: not in the stubs.
        super()._post_clean()  # type: ignore[misc]


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    form = SiteAdminForm
    list_display = ["name", "public_key", "agent_backend", "is_active", "origins", "created_at"]
    list_filter = ["is_active", "agent_backend"]
    search_fields = ["name", "public_key"]
    readonly_fields = [
        "public_key",
        "secret_status",
        "embed_snippet",
        "created_at",
        "messenger_setup",
        "page_token_status",
    ]

    class Media:
        js = ["widget/admin.js"]

    def get_fieldsets(self, request: HttpRequest, obj: Site | None = None):
        editable = self.has_change_permission(request, obj)
        origins = "origins_text" if editable else "allowed_origins"
        secret = ["secret_status", "new_secret", "clear_secret"] if editable else ["secret_status"]
        fieldsets = [
            (None, {"fields": ["name", "is_active", origins]}),
            ("Look and greeting", {"fields": LOOK_FIELDS}),
            ("AI agent", {"fields": ["agent_backend", "agent_config", *secret]}),
            ("QA", {"fields": ["developer_emails"]}),
            (
                "AI budget",
                {
                    "fields": BUDGET_FIELDS,
                    "description": "Beyond a budget the visitor gets the fallback reply and "
                    "the scripted lead questions without the backend being called, and one "
                    "automation error is recorded per day. Daily usage: AI usage per day.",
                },
            ),
        ]
        fieldsets.append(
            (
                "Requests for a person",
                {
                    "fields": [*HANDOFF_FIELDS, "notify_text" if editable else "notify_emails"],
                    "description": "Inside these hours a visitor who asks for a person is told "
                    "someone will join; outside them, that the team will write back by email. "
                    "No times: always open.",
                },
            )
        )
        fieldsets.append(
            (
                "Lead quality",
                {
                    "fields": LEAD_QUALITY_FIELDS,
                    "description": "What the agent refuses and what it tells visitors "
                    "(README: Lead quality). Every email is checked and flagged either way.",
                },
            )
        )
        token = (
            ["page_token_status", "new_page_token", "clear_page_token"]
            if editable
            else ["page_token_status"]
        )
        fieldsets.append(
            (
                "Facebook Messenger",
                {
                    "fields": [
                        "messenger_setup",
                        "messenger_page_id",
                        *token,
                        "messenger_human_agent_tag",
                    ],
                    "description": "Answer this Facebook page's Messenger conversations with "
                    "this site's agent (README: Facebook Messenger).",
                },
            )
        )
        if obj is not None:
            fieldsets.insert(
                0, ("Embed", {"fields": ["public_key", "embed_snippet", "created_at"]})
            )
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Site | None = None):
        fields = list(super().get_readonly_fields(request, obj))
        if not self.has_change_permission(request, obj):
            # View-only users get every field read-only; agent_secret is never among them.
            fields += ["name", "is_active", "allowed_origins", *LOOK_FIELDS]
            fields += ["agent_backend", "agent_config", *BUDGET_FIELDS, "messenger_page_id"]
            fields += [*HANDOFF_FIELDS, "notify_emails"]
            fields += ["developer_emails"]
            fields += ["messenger_human_agent_tag"]
            fields += LEAD_QUALITY_FIELDS
        return fields

    @admin.display(description="Allowed origins")
    def origins(self, obj: Site) -> int:
        return len(obj.allowed_origins or [])

    @admin.display(description="Agent secret")
    def secret_status(self, obj: Site) -> str:
        return mask_secret(obj.agent_secret)

    @admin.display(description="Page access token")
    def page_token_status(self, obj: Site) -> str:
        return mask_secret(obj.messenger_page_token)

    @admin.display(description="Meta app set-up")
    def messenger_setup(self, obj: Site | None) -> str:
        callback = f"{settings.PUBLIC_BASE_URL}{reverse('messenger:webhook')}"
        verify = settings.MESSENGER_VERIFY_TOKEN or "(MESSENGER_VERIFY_TOKEN is not set)"
        closed = (
            ""
            if settings.MESSENGER_APP_SECRET
            else " The webhook is closed: MESSENGER_APP_SECRET is not set."
        )
        check = ""
        if obj is not None and obj.pk:
            check = format_html(
                '<p><button type="submit" class="button" form="messenger-check-{pk}">'
                "Check connection</button></p>",
                pk=obj.pk,
            )
        return format_html(
            "<p>In Meta's app dashboard (Messenger > Webhooks), paste:</p>"
            '<p>Callback URL: <code id="messenger-callback">{callback}</code> '
            '<button type="button" class="button" data-copy-target="messenger-callback">'
            "Copy</button></p>"
            "<p>Verify token: <code>{verify}</code></p>"
            "<p>Subscribe the page to messages, messaging_postbacks and message_echoes; the "
            "app needs the pages_messaging permission.{closed}</p>{check}",
            callback=callback,
            verify=verify,
            closed=closed,
            check=check,
        )

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # The check's own small form, outside the change form (forms cannot nest); the button
        # in the Messenger section submits it through its form= attribute.
        if obj is not None and self.has_change_permission(request, obj):
            context["messenger_check_url"] = reverse(
                "admin:widget_site_messenger_check", args=[obj.pk]
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/messenger-check/",
                self.admin_site.admin_view(self.messenger_check_view),
                name="widget_site_messenger_check",
            ),
            *super().get_urls(),
        ]

    def messenger_check_view(self, request: HttpRequest, object_id: str) -> HttpResponseBase:
        """Ask the Graph API for the page's name with the stored token; say what came back."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        site = get_object_or_404(Site, pk=object_id) if object_id.isdigit() else None
        if site is None:
            raise PermissionDenied
        if not self.has_change_permission(request, site):
            raise PermissionDenied
        from widget.channels.messenger.graph import connection_check

        ok, message = connection_check(site=site)
        self.message_user(request, message, messages.SUCCESS if ok else messages.ERROR)
        return HttpResponseRedirect(reverse("admin:widget_site_change", args=[site.pk]))

    @admin.display(description="Embed code")
    def embed_snippet(self, obj: Site) -> str:
        base = settings.PUBLIC_BASE_URL
        script = (
            f'<script src="{base}/widget/embed.js" data-site="{obj.public_key}" async></script>'
        )
        iframe = (
            f'<iframe src="{base}/widget/{obj.public_key}/" title="Chat" '
            'style="width:370px;height:560px;border:0"></iframe>'
        )
        return format_html(
            "<p>Paste before <code>&lt;/body&gt;</code> on every page that should show the chat:"
            "</p>"
            '<pre id="embed-script-{key}">{script}</pre>'
            '<button type="button" class="button" data-copy-target="embed-script-{key}">'
            "Copy</button>"
            "<p>Where scripts are stripped (some page builders), use an iframe instead:</p>"
            '<pre id="embed-iframe-{key}">{iframe}</pre>'
            '<button type="button" class="button" data-copy-target="embed-iframe-{key}">'
            "Copy</button>",
            key=obj.pk,
            script=script,
            iframe=iframe,
        )


@admin.register(SiteDailyUsage)
class SiteDailyUsageAdmin(admin.ModelAdmin):
    """What each site's backend used per day; written only by widget.budget, so read-only."""

    list_display = ("day", "site", "ai_calls", "ai_tokens", "budget_replies", "budget_alerted_at")
    list_filter = ["site"]
    list_select_related = ["site"]
    date_hierarchy = "day"
    readonly_fields = list_display

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: SiteDailyUsage | None = None
    ) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: SiteDailyUsage | None = None
    ) -> bool:
        return False


@admin.register(MessengerInboxEvent)
class MessengerInboxEventAdmin(admin.ModelAdmin):
    """Meta's webhook events as they came, and what the worker made of them. Written only by
    the webhook and the worker (widget.channels.messenger), so read-only here."""

    list_display = ("received_at", "kind", "status", "page_id", "mid", "attempts", "session")
    list_filter = ["status", "kind"]
    list_select_related = ["session"]
    search_fields = ["mid", "page_id"]
    date_hierarchy = "received_at"
    readonly_fields = [field.name for field in MessengerInboxEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: MessengerInboxEvent | None = None
    ) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: MessengerInboxEvent | None = None
    ) -> bool:
        # Erasure removes a person's events with their session; nothing else deletes them.
        return False
