# ruff: noqa: E501 - the email bodies are the handbook's text, one paragraph a line.
"""Email templates of the handbook, with merge fields filled from the account.

"The templates provided below can be used for certain outreach efforts to customers to
drive engagement. Please note any points in each template that should be personalized and
update accordingly." (csm-account-engagement.md, Email Templates)

The bodies are fixed strings written here (never user input), rendered with Django's
template engine with autoescape off: they are plain-text emails.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.template import Context, Engine

from portfolio.models import Account, Contact

_ENGINE = Engine(autoescape=False)


@dataclass(frozen=True)
class EmailTemplate:
    key: str
    name: str
    subject: str
    body: str
    source: str


TEMPLATES: tuple[EmailTemplate, ...] = (
    EmailTemplate(
        key="initial_engagement",
        name="Initial customer engagement",
        source="csm-account-engagement.md, Email Templates: Initial customer engagement",
        subject="The Value of Working with a GitLab Customer Success Manager",
        body="""Dear {{ contact_name }},

I hope this email finds you well. I am reaching out to you today as your dedicated Customer Success Manager (CSM) to discuss the value of working with a CSM and how it can benefit you and your business.

As you may know, our primary goal is to help you achieve success with our product or service. As your CSM, I am here to be your trusted advisor and advocate, ensuring that you are getting the most out of our product and that you are satisfied with your overall experience.

Working with a CSM can provide many benefits, including:
- Strategic Guidance: I can provide you with insights and best practices to help you optimize your use of our product and get the most value out of it. We can work together to develop a plan to meet your business goals.
- Continuous Improvement: I am constantly monitoring your account to ensure that we are delivering the best possible experience. If there are areas where we can improve, I will work with you to identify and address them.
- Proactive Support: I am here to ensure that any issues or concerns you may have are addressed promptly and proactively. My goal is to minimize any disruptions and keep your business running smoothly.
- Increased ROI: By working closely with me, you can maximize the value you get from our product or service, resulting in a better return on investment.

I am committed to being your partner in success and ensuring that your experience with GitLab is a positive one. If you have any questions or concerns, please don't hesitate to reach out to me. I am always here to help.

Thank you for choosing GitLab, and I look forward to working with you to achieve your business goals.

Best regards,
{{ tam_name }}
Your GitLab Customer Success Manager
""",
    ),
    EmailTemplate(
        key="welcome_call",
        name="\u201cWelcome to GitLab\u201d call invitation",
        source=(
            'tam-account-engagement.md: the "Welcome to GitLab" call will introduce the '
            "customer to the Technical Account Manager and begin the handover process"
        ),
        subject="Welcome to GitLab, {{ customer }}: let's meet",
        body="""Dear {{ contact_name }},

Welcome to GitLab! {{ account_executive }} and I would like to invite you to a "Welcome to GitLab" call. I am {{ tam_name }}, your Technical Account Manager: on the call I will introduce myself, walk you through how we will work together, and start the handover from the pre-sales team.
{% if project_url %}
We will work together in your collaboration project: {{ project_url }}
Please open an issue there for general questions about product usage, best practices, adoption or integration. Troubleshooting, errors and outages go to GitLab Support.
{% endif %}
Please let me know which times suit you and who from your team should join.

Best regards,
{{ tam_name }}
Technical Account Manager, GitLab
""",
    ),
    EmailTemplate(
        key="collaboration_project",
        name="Invitation to the collaboration project",
        source=(
            "tam-account-engagement.md, Customer Engagement Tips: kindly prompt them to open a "
            "Support ticket or an issue in the collaboration project"
        ),
        subject="Your GitLab collaboration project",
        body="""Dear {{ contact_name }},

To make it easy to work together, we have set up a collaboration project for {{ customer }}: {{ project_url|default:"(link to follow)" }}

- General questions about product usage, best practices or recommendations, adoption or integration: please open an issue in the project, so the whole team can follow and GitLab's product and engineering teams can join in.
- GitLab downtime, errors or accessibility problems: please open a Support ticket.

Best regards,
{{ tam_name }}
Technical Account Manager, GitLab
""",
    ),
    EmailTemplate(
        key="disengagement_follow_up",
        name="Disengagement follow-up",
        source=(
            "tam-account-engagement.md, Disengaging with a customer: Send a follow-up that "
            "summarizes what was discussed, including their assistance options"
        ),
        subject="Following up on our conversation: how to get help with GitLab",
        body="""Dear {{ contact_name }},

Thank you for taking the time to meet with {{ account_executive }} and me. As discussed, I will no longer be your Technical Account Manager; {{ account_executive }} remains your point of contact at GitLab.

Your options for assistance going forward:
- Troubleshooting, errors, outages and basic "how to" technical questions: GitLab Support.
- Complex "how to" and workflow advice: please send it in writing to {{ account_executive }}{% if account_executive_email %} ({{ account_executive_email }}){% endif %}, who will work with the whole of Customer Success to find the best solution.
- The features that change with your subscription are listed on the feature comparison page: https://about.gitlab.com/pricing/feature-comparison/
- Self-serve guidance: the GitLab documentation (https://docs.gitlab.com), blog, YouTube channel and community forum (https://forum.gitlab.com/).

Best regards,
{{ tam_name }}
""",
    ),
    EmailTemplate(
        key="ebr_invitation",
        name="Executive Business Review invitation",
        source=(
            "tam-account-engagement.md, Commercial engagement guidelines: Executive Business "
            "Reviews: 1-2 per year"
        ),
        subject="Executive Business Review: GitLab and {{ customer }}",
        body="""Dear {{ contact_name }},

I would like to schedule our Executive Business Review for {{ customer }}. We will review the outcomes achieved with GitLab so far, the progress on your success plan objectives, and agree on priorities for the coming months{% if renewal_date %} ahead of your renewal on {{ renewal_date }}{% endif %}.

Could you suggest a few times that suit you and your executive sponsors?

Best regards,
{{ tam_name }}
Technical Account Manager, GitLab
""",
    ),
)

BY_KEY: dict[str, EmailTemplate] = {t.key: t for t in TEMPLATES}


def merge_fields(
    account: Account, *, user: AbstractBaseUser | None, contact: Contact | None
) -> dict:
    """The merge fields of an account: customer, contact, TAM, account executive, project,
    renewal date and plan."""
    tam = account.tam or user
    owner = account.owner
    return {
        "customer": account.name,
        "contact_name": contact.name if contact else f"{account.name} team",
        "contact_email": contact.email if contact else "",
        "tam_name": (tam.get_full_name() or tam.get_username()) if tam else "",
        "tam_email": getattr(tam, "email", "") if tam else "",
        "account_executive": owner.name if owner else "your Account Executive",
        "account_executive_email": owner.email if owner else "",
        "project_url": account.collaboration_project_url,
        "renewal_date": f"{account.renewal_date:%d %B %Y}" if account.renewal_date else "",
        "plan": account.plan,
    }


def render_email(key: str, fields: dict) -> tuple[str, str]:
    """(subject, body) of template `key` with the merge fields filled in."""
    template = BY_KEY[key]
    context = Context(fields)
    subject = _ENGINE.from_string(template.subject).render(context).strip()
    body = _ENGINE.from_string(template.body).render(context)
    return subject, body
