"""Admin: teams' chat webhooks (the URL write-only: typed in, stored encrypted, shown only
as its host and last characters), and read-only views of what was produced and sent."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from notifications import services
from notifications.models import (
    ChatService,
    Notification,
    NotificationDigest,
    TeamWebhook,
    WebhookDelivery,
)


class TeamWebhookForm(forms.ModelForm):
    url = forms.CharField(
        label="Incoming webhook URL",
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Slack: Apps → Incoming Webhooks; Teams: a Workflows “post to a channel "
        "when a webhook request is received”. Kept encrypted; leave empty to keep the "
        "stored one.",
    )

    class Meta:
        model = TeamWebhook
        fields = ["team", "service", "enabled"]

    def clean_url(self) -> str:
        url = self.cleaned_data.get("url", "").strip()
        if url:
            try:
                services.webhook_url_validate(url)
            except ValidationError as exc:
                raise forms.ValidationError(exc.message_dict["url"]) from None
        return url

    def clean(self):
        cleaned = super().clean()
        if not self.instance.pk and not cleaned.get("url"):
            self.add_error("url", "Paste the webhook URL.")
        return cleaned


@admin.register(TeamWebhook)
class TeamWebhookAdmin(admin.ModelAdmin):
    form = TeamWebhookForm
    list_display = ["team", "service", "url_hint", "enabled", "last_sent_at", "last_error"]
    readonly_fields = ["url_hint", "last_sent_at", "last_error"]

    def save_model(self, request, obj, form, change):
        url = form.cleaned_data.get("url")
        if url:
            webhook = services.team_webhook_set(
                team_id=obj.team_id,
                service=obj.service or ChatService.SLACK,
                url=url,
                user=request.user,
                enabled=obj.enabled,
            )
            obj.pk, obj.url_encrypted, obj.url_hint = (
                webhook.pk,
                webhook.url_encrypted,
                webhook.url_hint,
            )
        obj.updated_by = request.user
        obj.save()


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["created_at", "user", "kind", "title", "read_at"]
    list_filter = ["kind"]
    list_select_related = ["user"]
    raw_id_fields = ["user", "account", "digest"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(NotificationDigest)
class NotificationDigestAdmin(admin.ModelAdmin):
    list_display = ["day", "user", "status", "notification_count", "attempts", "sent_at"]
    list_filter = ["status"]
    list_select_related = ["user"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "team", "kind", "title", "status", "attempts", "last_error"]
    list_filter = ["status", "kind"]
    list_select_related = ["team"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
