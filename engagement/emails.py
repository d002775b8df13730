"""Email templates with merge fields filled from the account.

"The templates provided below can be used for certain outreach efforts to customers to
drive engagement. Please note any points in each template that should be personalized and
update accordingly." (csm-account-engagement.md, Email Templates)

The templates live in the database (`engagement.models.EmailTemplate`, seeded by
migration 0005, edited by admins in Django admin, every save a new version); the picker
and `render_email` use the latest version. Only the initial customer engagement is the
handbook's text; the others are Portfolio's own and are marked so (`origin`).

Subject and body are rendered with Django's template engine with autoescape off (they
are plain-text emails) and only the built-in tags and filters; only admins edit them.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.template import Context, Engine, TemplateSyntaxError

from engagement.models import Disengagement, DisengagementReason, EmailTemplate
from portfolio.models import Account, Contact

_ENGINE = Engine(autoescape=False)

# "If disengagement is due to the customer downgrading/churning, identify the features
# they will lose access to" (tam-account-engagement.md, Disengaging with a customer).
DOWNGRADE_OR_CHURN = (DisengagementReason.DOWNGRADE, DisengagementReason.CHURN)


def templates_for_picker() -> QuerySet[EmailTemplate]:
    """The templates in picker order, each in its latest version."""
    return EmailTemplate.objects.order_by("position", "key")


def picker_label(template: EmailTemplate) -> str:
    """The template's name and its origin: the handbook's text or Portfolio's own."""
    if template.origin == "handbook":
        return f"{template.name} (handbook text)"
    return f"{template.name} (Portfolio's own text)"


def template_syntax_error(text: str) -> str:
    """The Django template syntax error of `text`, or "" when it compiles."""
    try:
        _ENGINE.from_string(text)
    except TemplateSyntaxError as exc:
        return str(exc)
    return ""


def merge_fields(account: Account, *, user: User | None, contact: Contact | None) -> dict:
    """The merge fields of an account: customer, contact, TAM, account executive, project,
    renewal date and plan; and from its latest recorded disengagement, whether it is due
    to a downgrade or churn (`downgrade_or_churn`) and the features lost."""
    tam = account.tam or user
    owner = account.owner
    disengagement = (
        Disengagement.objects.filter(account=account).only("reason", "option_features_lost").first()
    )
    downgrade_or_churn = disengagement is not None and disengagement.reason in DOWNGRADE_OR_CHURN
    return {
        "customer": account.name,
        "contact_name": contact.name if contact else f"{account.name} team",
        "contact_email": contact.email if contact else "",
        "tam_name": (tam.get_full_name() or tam.get_username()) if tam else "",
        "tam_email": tam.email if tam else "",
        "account_executive": owner.name if owner else "your Account Executive",
        "account_executive_email": owner.email if owner else "",
        "project_url": account.collaboration_project_url,
        "renewal_date": f"{account.renewal_date:%d %B %Y}" if account.renewal_date else "",
        "plan": account.plan,
        "disengagement_reason": disengagement.reason if disengagement else "",
        "downgrade_or_churn": downgrade_or_churn,
        "features_lost": disengagement.option_features_lost
        if disengagement is not None and downgrade_or_churn
        else "",
    }


def render_email(key: str, fields: dict) -> tuple[str, str]:
    """(subject, body) of the latest version of template `key`, merge fields filled in."""
    template = EmailTemplate.objects.get(key=key)
    context = Context(fields)
    subject = _ENGINE.from_string(template.subject).render(context).strip()
    body = _ENGINE.from_string(template.body).render(context)
    return subject, body
