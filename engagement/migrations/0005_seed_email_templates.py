# ruff: noqa: E501 - the template texts, one string each, frozen as they were seeded.
"""Seed the five email templates as their first versions (version 1, saved by Portfolio).

The texts are those `engagement/emails.py` carried before templates moved to the
database, frozen here so later edits of the code never change what was seeded. One change:
the disengagement follow-up's "features that change" line is shown only when the
disengagement is due to a downgrade or churn ("If disengagement is due to the customer
downgrading/churning, identify the features they will lose access to",
tam-account-engagement.md). Only the initial customer engagement is the handbook's text
(origin "handbook"); the other four are Portfolio's own (origin "portfolio").
"""

from django.db import migrations

TEMPLATES = [
    {
        "key": "initial_engagement",
        "position": 1,
        "name": "Initial customer engagement",
        "origin": "handbook",
        "source": "csm-account-engagement.md, Email Templates: Initial customer engagement",
        "subject": "The Value of Working with a GitLab Customer Success Manager",
        "body": "Dear {{ contact_name }},\n\nI hope this email finds you well. I am reaching out to you today as your dedicated Customer Success Manager (CSM) to discuss the value of working with a CSM and how it can benefit you and your business.\n\nAs you may know, our primary goal is to help you achieve success with our product or service. As your CSM, I am here to be your trusted advisor and advocate, ensuring that you are getting the most out of our product and that you are satisfied with your overall experience.\n\nWorking with a CSM can provide many benefits, including:\n- Strategic Guidance: I can provide you with insights and best practices to help you optimize your use of our product and get the most value out of it. We can work together to develop a plan to meet your business goals.\n- Continuous Improvement: I am constantly monitoring your account to ensure that we are delivering the best possible experience. If there are areas where we can improve, I will work with you to identify and address them.\n- Proactive Support: I am here to ensure that any issues or concerns you may have are addressed promptly and proactively. My goal is to minimize any disruptions and keep your business running smoothly.\n- Increased ROI: By working closely with me, you can maximize the value you get from our product or service, resulting in a better return on investment.\n\nI am committed to being your partner in success and ensuring that your experience with GitLab is a positive one. If you have any questions or concerns, please don't hesitate to reach out to me. I am always here to help.\n\nThank you for choosing GitLab, and I look forward to working with you to achieve your business goals.\n\nBest regards,\n{{ tam_name }}\nYour GitLab Customer Success Manager\n",
    },
    {
        "key": "welcome_call",
        "position": 2,
        "name": "“Welcome to GitLab” call invitation",
        "origin": "portfolio",
        "source": 'Portfolio\'s text for tam-account-engagement.md: the "Welcome to GitLab" call will introduce the customer to the Technical Account Manager and begin the handover process',
        "subject": "Welcome to GitLab, {{ customer }}: let's meet",
        "body": 'Dear {{ contact_name }},\n\nWelcome to GitLab! {{ account_executive }} and I would like to invite you to a "Welcome to GitLab" call. I am {{ tam_name }}, your Technical Account Manager: on the call I will introduce myself, walk you through how we will work together, and start the handover from the pre-sales team.\n{% if project_url %}\nWe will work together in your collaboration project: {{ project_url }}\nPlease open an issue there for general questions about product usage, best practices, adoption or integration. Troubleshooting, errors and outages go to GitLab Support.\n{% endif %}\nPlease let me know which times suit you and who from your team should join.\n\nBest regards,\n{{ tam_name }}\nTechnical Account Manager, GitLab\n',
    },
    {
        "key": "collaboration_project",
        "position": 3,
        "name": "Invitation to the collaboration project",
        "origin": "portfolio",
        "source": "Portfolio's text for tam-account-engagement.md, Customer Engagement Tips: kindly prompt them to open a Support ticket or an issue in the collaboration project",
        "subject": "Your GitLab collaboration project",
        "body": 'Dear {{ contact_name }},\n\nTo make it easy to work together, we have set up a collaboration project for {{ customer }}: {{ project_url|default:"(link to follow)" }}\n\n- General questions about product usage, best practices or recommendations, adoption or integration: please open an issue in the project, so the whole team can follow and GitLab\'s product and engineering teams can join in.\n- GitLab downtime, errors or accessibility problems: please open a Support ticket.\n\nBest regards,\n{{ tam_name }}\nTechnical Account Manager, GitLab\n',
    },
    {
        "key": "disengagement_follow_up",
        "position": 4,
        "name": "Disengagement follow-up",
        "origin": "portfolio",
        "source": "Portfolio's text for tam-account-engagement.md, Disengaging with a customer: Send a follow-up that summarizes what was discussed, including their assistance options",
        "subject": "Following up on our conversation: how to get help with GitLab",
        "body": 'Dear {{ contact_name }},\n\nThank you for taking the time to meet with {{ account_executive }} and me. As discussed, I will no longer be your Technical Account Manager; {{ account_executive }} remains your point of contact at GitLab.\n\nYour options for assistance going forward:\n- Troubleshooting, errors, outages and basic "how to" technical questions: GitLab Support.\n- Complex "how to" and workflow advice: please send it in writing to {{ account_executive }}{% if account_executive_email %} ({{ account_executive_email }}){% endif %}, who will work with the whole of Customer Success to find the best solution.\n{% if downgrade_or_churn %}- The features that change with your subscription{% if features_lost %}: {{ features_lost }}{% endif %}. The full list is on the feature comparison page: https://about.gitlab.com/pricing/feature-comparison/\n{% endif %}- Self-serve guidance: the GitLab documentation (https://docs.gitlab.com), blog, YouTube channel and community forum (https://forum.gitlab.com/).\n\nBest regards,\n{{ tam_name }}\n',
    },
    {
        "key": "ebr_invitation",
        "position": 5,
        "name": "Executive Business Review invitation",
        "origin": "portfolio",
        "source": "Portfolio's text for tam-account-engagement.md, Commercial engagement guidelines: Executive Business Reviews: 1-2 per year",
        "subject": "Executive Business Review: GitLab and {{ customer }}",
        "body": "Dear {{ contact_name }},\n\nI would like to schedule our Executive Business Review for {{ customer }}. We will review the outcomes achieved with GitLab so far, the progress on your success plan objectives, and agree on priorities for the coming months{% if renewal_date %} ahead of your renewal on {{ renewal_date }}{% endif %}.\n\nCould you suggest a few times that suit you and your executive sponsors?\n\nBest regards,\n{{ tam_name }}\nTechnical Account Manager, GitLab\n",
    },
]


def seed(apps, schema_editor):
    EmailTemplate = apps.get_model("engagement", "EmailTemplate")
    EmailTemplateVersion = apps.get_model("engagement", "EmailTemplateVersion")
    for row in TEMPLATES:
        template, created = EmailTemplate.objects.get_or_create(
            key=row["key"], defaults={**row, "version": 1}
        )
        if created:
            EmailTemplateVersion.objects.create(
                template=template,
                version=1,
                **{k: row[k] for k in ("name", "origin", "source", "subject", "body")},
            )


def unseed(apps, schema_editor):
    apps.get_model("engagement", "EmailTemplate").objects.filter(
        key__in=[row["key"] for row in TEMPLATES]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("engagement", "0004_email_templates_and_not_needed_steps")]

    operations = [migrations.RunPython(seed, unseed)]
