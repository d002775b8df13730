"""The engagement panel of an account: full page under /engagement/account/<id>/ and one
htmx partial per section (`engagement/account.html#<section>`).

Every view finds the account through `portfolio.selectors.accounts_for_user` (404 out of
scope). A POST answers an htmx request with the section's partial (200, errors included)
and a plain request with a redirect back (success) or the full page with status 400 and
the typed input (error).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import trigger_client_event

from engagement import emails, selectors
from engagement.forms import (
    CadenceForm,
    DisengagementForm,
    EGroupBriefForm,
    EmailForm,
    EngagementStartForm,
    ObjectiveForm,
    ObjectiveStatusForm,
    PersonaForm,
    ProjectForm,
    StepForm,
    TamAssignForm,
    TaskForm,
    WelcomeCallForm,
)
from engagement.models import EGroupBrief, EngagementStep, SuccessObjective, SuccessTask
from engagement.services import (
    cadence_calls,
    checklist,
    customer_issues,
    disengagement,
    personas,
    projects,
    success_plan,
)
from engagement.services.brief import egroup_brief_save
from engagement.services.emails import email_queue
from integrations.enqueue import broker_require
from portfolio.htmx import HtmxHttpRequest
from portfolio.http import safe_next
from portfolio.models import Account
from portfolio.selectors import accounts_for_user, tams_by_name, tams_for_user

SECTIONS = (
    "checklist",
    "project",
    "cadence",
    "success_plan",
    "personas",
    "customer_issues",
    "disengagement",
    "emails",
    "egroup_brief",
)
PANEL_TEMPLATE = "engagement/account.html"
# Sent after a change so the sections that summarise others (checklist, brief) reload.
CHANGED_EVENT = "eng-changed"
SELF_CONTAINED = ("checklist", "egroup_brief", "emails")


def _account(request: HtmxHttpRequest, salesforce_id: str, *, panel_facts: bool = False) -> Account:
    """The account if the user may see it (404 otherwise); `panel_facts`: with the facts
    the panel shows, read in the same query (for a view that shows the panel without
    writing first)."""
    accounts = accounts_for_user(request.user).select_related("tam", "owner", "region", "ruleset")
    if panel_facts:
        accounts = selectors.with_panel_facts(accounts, timezone.now())
    return get_object_or_404(accounts, salesforce_id=salesforce_id)


def _now_local():
    return timezone.localtime().replace(second=0, microsecond=0)


def default_forms(
    request: HtmxHttpRequest,
    account: Account,
    *,
    brief: EGroupBrief | None = None,
    contacts: list | None = None,
) -> dict:
    """Unbound forms of every section (a bound form with errors replaces its entry);
    `contacts`: every contact of the account in name order, when the caller has them (the
    contact fields' options, not read again)."""
    return {
        "start": EngagementStartForm(),
        "tam": TamAssignForm(
            tams=tams_for_user(request.user),
            # The options: the same users, by name, read once per data version.
            tam_rows=tams_by_name(request.user),
            initial={"tam": account.tam_id or request.user.pk},
        ),
        "welcome": WelcomeCallForm(initial={"occurred_at": _now_local()}),
        "project": ProjectForm(initial={"template": _default_template(account)}),
        "cadence": CadenceForm(initial={"occurred_at": _now_local(), "kind": "cadence_call"}),
        "objective": ObjectiveForm(),
        "task": TaskForm(),
        "persona": PersonaForm(account=account, contacts=contacts),
        "disengagement": DisengagementForm(),
        "email": EmailForm(
            account=account, contacts=contacts, initial={"template": "initial_engagement"}
        ),
        "brief": EGroupBriefForm(instance=brief),
    }


def _default_template(account: Account) -> str:
    return "commercial" if account.segment == "commercial" else "enterprise"


def account_panel_context(
    request: HtmxHttpRequest,
    account: Account,
    *,
    forms: dict | None = None,
    message: str = "",
    section: str = "",
    ok: bool = True,
) -> dict:
    """The context the engagement panel (`engagement/account.html#panel`) needs:
    {"engagement_panel_template", "account", "eng", "eng_forms", "eng_message",
    "eng_section", "eng_ok", "eng_next"}."""
    panel = selectors.account_engagement_panel(account)
    all_forms = default_forms(
        request,
        account,
        brief=panel["brief"],
        # The panel lists at most CONTACTS_SHOWN contacts: all of them when fewer.
        contacts=panel["contacts"] if len(panel["contacts"]) < selectors.CONTACTS_SHOWN else None,
    )
    all_forms.update(forms or {})
    return {
        "engagement_panel_template": PANEL_TEMPLATE,
        "account": account,
        "eng": panel,
        "eng_forms": all_forms,
        "eng_message": message,
        "eng_section": section,
        "eng_ok": ok,
        "eng_next": request.get_full_path()
        if request.method == "GET"
        else request.POST.get("next", ""),
    }


def _respond(
    request: HtmxHttpRequest,
    account: Account,
    section: str,
    *,
    forms: dict | None = None,
    message: str = "",
    ok: bool = True,
) -> HttpResponse:
    context = account_panel_context(
        request, account, forms=forms, message=message, section=section, ok=ok
    )
    if request.htmx:
        response = render(request, f"{PANEL_TEMPLATE}#{section}", context)
        if ok and request.method == "POST" and section not in SELF_CONTAINED:
            # The brief's open risks and the checklist read what this change touched.
            trigger_client_event(response, CHANGED_EVENT)
        return response
    if ok and request.method == "POST":
        target = safe_next(request, reverse("engagement:account", args=[account.salesforce_id]))
        return redirect(f"{target.split('#')[0]}#eng-{section.replace('_', '-')}")
    context["eng_next"] = request.POST.get("next", "") or context["eng_next"]
    return render(request, "engagement/account.html", context, status=200 if ok else 400)


def _errors_of(exc: ValidationError) -> str:
    if hasattr(exc, "message_dict"):
        return " ".join(m for msgs in exc.message_dict.values() for m in msgs)
    return " ".join(exc.messages)


# --- Pages ------------------------------------------------------------------------------


@require_GET
@vary_on_headers("HX-Request")
def account_page(request: HtmxHttpRequest, salesforce_id: str) -> HttpResponse:
    """The whole engagement panel: a full page, or the `panel` partial for htmx."""
    account = _account(request, salesforce_id, panel_facts=True)
    context = account_panel_context(request, account)
    if request.htmx:
        return render(request, f"{PANEL_TEMPLATE}#panel", context)
    return render(request, "engagement/account.html", context)


@require_GET
@vary_on_headers("HX-Request")
def section(request: HtmxHttpRequest, salesforce_id: str, name: str) -> HttpResponse:
    """One section: its partial for htmx (e.g. polled while a project is being created),
    the full page otherwise."""
    if name not in SECTIONS:
        raise Http404("No such section")
    account = _account(request, salesforce_id, panel_facts=True)
    context = account_panel_context(request, account)
    if request.htmx:
        response = render(request, f"{PANEL_TEMPLATE}#{name}", context)
        project = context["eng"]["project"]
        if name == "project" and request.GET.get("poll") and project and not project.busy:
            trigger_client_event(response, CHANGED_EVENT)  # the GitLab work has finished
        return response
    return render(request, "engagement/account.html", context)


# --- Engagement checklist ---------------------------------------------------------------


@require_POST
def engagement_start(request: HtmxHttpRequest, salesforce_id: str) -> HttpResponse:
    account = _account(request, salesforce_id)
    form = EngagementStartForm(request.POST)
    if not form.is_valid():
        return _respond(request, account, "checklist", forms={"start": form}, ok=False)
    try:
        checklist.engagement_start(
            account=account, kind=form.cleaned_data["kind"], user=request.user
        )
    except ValidationError as exc:
        return _respond(request, account, "checklist", message=_errors_of(exc), ok=False)
    return _respond(request, account, "checklist", message="Engagement started.")


@require_POST
def step_set(request: HtmxHttpRequest, salesforce_id: str, step_id: int) -> HttpResponse:
    account = _account(request, salesforce_id)
    step = get_object_or_404(
        EngagementStep, pk=step_id, engagement__account=account, engagement__ended_at=None
    )
    form = StepForm(request.POST)
    form.is_valid()
    if form.cleaned_data.get("not_needed"):
        try:
            checklist.engagement_step_not_needed(
                step=step, user=request.user, note=form.cleaned_data.get("note") or ""
            )
        except ValidationError as exc:
            return _respond(request, account, "checklist", message=_errors_of(exc), ok=False)
        return _respond(request, account, "checklist", message="Marked as not needed.")
    checklist.engagement_step_set(step=step, user=request.user, done=form.cleaned_data["done"])
    return _respond(request, account, "checklist")


@require_POST
def tam_assign(request: HtmxHttpRequest, salesforce_id: str) -> HttpResponse:
    account = _account(request, salesforce_id)
    form = TamAssignForm(request.POST, tams=tams_for_user(request.user))
    if not form.is_valid():
        return _respond(request, account, "checklist", forms={"tam": form}, ok=False)
    checklist.engagement_tam_assign(
        account=account, tam=form.cleaned_data["tam"], user=request.user
    )
    tam = form.cleaned_data["tam"]
    return _respond(
        request,
        account,
        "checklist",
        message=f"{tam.get_full_name() or tam.get_username()} is the TAM; Salesforce is updated.",
    )


@require_POST
def welcome_call(request: HtmxHttpRequest, salesforce_id: str) -> HttpResponse:
    account = _account(request, salesforce_id)
    engagement = account.engagements.filter(ended_at__isnull=True).first()
    form = WelcomeCallForm(request.POST)
    if engagement is None or not form.is_valid():
        msg = "" if engagement else "Start an engagement first."
        return _respond(
            request, account, "checklist", forms={"welcome": form}, message=msg, ok=False
        )
    checklist.engagement_welcome_call_record(
        engagement=engagement, user=request.user, **form.cleaned_data
    )
    return _respond(request, account, "checklist", message="Welcome to GitLab call logged.")


# --- Collaboration project --------------------------------------------------------------


@require_POST
def project_request(request: HtmxHttpRequest, salesforce_id: str) -> HttpResponse:
    account = _account(request, salesforce_id)
    form = ProjectForm(request.POST)
    if not form.is_valid():
        return _respond(request, account, "project", forms={"project": form}, ok=False)
    try:
        projects.collaboration_project_request(
            account=account, template=form.cleaned_data["template"], user=request.user
        )
    except ValidationError as exc:
        return _respond(
            request, account, "project", forms={"project": form}, message=_errors_of(exc), ok=False
        )
    return _respond(request, account, "project", message="Creating the project in GitLab…")


@require_POST
def project_transfer(request: HtmxHttpRequest, salesforce_id: str) -> HttpResponse:
    account = _account(request, salesforce_id)
    try:
        projects.collaboration_project_transfer_request(account=account, user=request.user)
    except ValidationError as exc:
        return _respond(request, account, "project", message=_errors_of(exc), ok=False)
    return _respond(
        request, account, "project", message="Moving the project to account management…"
    )


# --- Cadence and EBRs -------------------------------------------------------------------


@require_POST
def cadence_log(request: HtmxHttpRequest, salesforce_id: str) -> HttpResponse:
    account = _account(request, salesforce_id)
    form = CadenceForm(request.POST)
    if not form.is_valid():
        return _respond(request, account, "cadence", forms={"cadence": form}, ok=False)
    cadence_calls.cadence_log(account=account, user=request.user, **form.cleaned_data)
    return _respond(request, account, "cadence", message="Logged.")


# --- Success plan -----------------------------------------------------------------------


@require_POST
def objective_add(request: HtmxHttpRequest, salesforce_id: str) -> HttpResponse:
    account = _account(request, salesforce_id)
    form = ObjectiveForm(request.POST)
    if form.is_valid():
        try:
            success_plan.success_objective_add(
                account=account, user=request.user, **form.cleaned_data
            )
        except ValidationError as exc:
            form.add_error(None, exc)
    if form.errors:
        return _respond(request, account, "success_plan", forms={"objective": form}, ok=False)
    return _respond(request, account, "success_plan")


@require_POST
def objective_update(
    request: HtmxHttpRequest, salesforce_id: str, objective_id: int
) -> HttpResponse:
    account = _account(request, salesforce_id)
    objective = get_object_or_404(SuccessObjective, pk=objective_id, account=account)
    form = ObjectiveStatusForm(request.POST)
    if not form.is_valid():
        return _respond(request, account, "success_plan", message="Pick a status.", ok=False)
    success_plan.success_objective_update(objective=objective, **form.cleaned_data)
    return _respond(request, account, "success_plan")


@require_POST
def objective_delete(
    request: HtmxHttpRequest, salesforce_id: str, objective_id: int
) -> HttpResponse:
    account = _account(request, salesforce_id)
    objective = get_object_or_404(SuccessObjective, pk=objective_id, account=account)
    success_plan.success_objective_delete(objective=objective)
    return _respond(request, account, "success_plan")


@require_POST
def task_add(request: HtmxHttpRequest, salesforce_id: str, objective_id: int) -> HttpResponse:
    account = _account(request, salesforce_id)
    objective = get_object_or_404(SuccessObjective, pk=objective_id, account=account)
    form = TaskForm(request.POST)
    if not form.is_valid():
        form.objective_id = objective.pk
        return _respond(request, account, "success_plan", forms={"task": form}, ok=False)
    success_plan.success_task_add(objective=objective, **form.cleaned_data)
    return _respond(request, account, "success_plan")


@require_POST
def task_set(request: HtmxHttpRequest, salesforce_id: str, task_id: int) -> HttpResponse:
    account = _account(request, salesforce_id)
    task = get_object_or_404(SuccessTask, pk=task_id, objective__account=account)
    form = StepForm(request.POST)
    form.is_valid()
    success_plan.success_task_set_done(task=task, done=form.cleaned_data["done"])
    return _respond(request, account, "success_plan")


# --- Personas, customer issues, disengagement -------------------------------------------


@require_POST
def persona_set(request: HtmxHttpRequest, salesforce_id: str) -> HttpResponse:
    account = _account(request, salesforce_id)
    form = PersonaForm(request.POST, account=account)
    if not form.is_valid():
        return _respond(request, account, "personas", forms={"persona": form}, ok=False)
    personas.contact_personas_set(
        contact=form.cleaned_data["contact"], personas=form.cleaned_data["personas"]
    )
    return _respond(request, account, "personas")


@require_POST
def issues_sync(request: HtmxHttpRequest, salesforce_id: str) -> HttpResponse:
    account = _account(request, salesforce_id)
    if (
        not hasattr(account, "collaboration_project")
        or account.collaboration_project.gitlab_id is None
    ):
        return _respond(
            request, account, "customer_issues", message="No collaboration project yet.", ok=False
        )
    customer_issues.customer_issues_sync_request(account=account)
    return _respond(
        request, account, "customer_issues", message="Reading the project's issues from GitLab…"
    )


@require_POST
def disengage(request: HtmxHttpRequest, salesforce_id: str) -> HttpResponse:
    account = _account(request, salesforce_id)
    form = DisengagementForm(request.POST)
    if form.is_valid():
        try:
            disengagement.disengagement_record(
                account=account, user=request.user, **form.cleaned_data
            )
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                for message in messages:
                    form.add_error(field if field in form.fields else None, message)
    if form.errors:
        return _respond(request, account, "disengagement", forms={"disengagement": form}, ok=False)
    return _respond(
        request, account, "disengagement", message="Disengagement recorded; the TAM is unassigned."
    )


# --- Emails -----------------------------------------------------------------------------


@require_POST
def email(request: HtmxHttpRequest, salesforce_id: str) -> HttpResponse:
    """`action=render` fills subject and body from the template (for copy or editing);
    `action=send` sends the (edited) email and logs it on the timeline."""
    account = _account(request, salesforce_id)
    form = EmailForm(request.POST, account=account)
    if request.POST.get("action") == "send":
        if not form.validate_for_send():
            return _respond(request, account, "emails", forms={"email": form}, ok=False)
        broker_require()  # a queue that cannot take it: a clear 503, nothing stored
        try:
            email_queue(
                account=account,
                user=request.user,
                to=form.recipients(),
                subject=form.cleaned_data["subject"],
                body=form.cleaned_data["body"],
            )
        except ValidationError as exc:
            for field, messages_ in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, messages_)
            return _respond(request, account, "emails", forms={"email": form}, ok=False)
        return _respond(
            request,
            account,
            "emails",
            message="Email queued: it is sent in a moment and logged on the timeline.",
        )
    if not form.is_valid():
        return _respond(request, account, "emails", forms={"email": form}, ok=False)
    contact = form.cleaned_data["contact"]
    fields = emails.merge_fields(account, user=request.user, contact=contact)
    subject, body = emails.render_email(form.cleaned_data["template"], fields)
    data = request.POST.copy()
    data.update({"subject": subject, "body": body})
    if contact and contact.email and not form.recipients():
        data["to"] = contact.email
    rendered = EmailForm(data, account=account)
    rendered.is_valid()
    return _respond(request, account, "emails", forms={"email": rendered})


# --- E-Group call brief -----------------------------------------------------------------


@require_POST
def brief_save(request: HtmxHttpRequest, salesforce_id: str) -> HttpResponse:
    account = _account(request, salesforce_id)
    form = EGroupBriefForm(request.POST)
    if not form.is_valid():
        return _respond(request, account, "egroup_brief", forms={"brief": form}, ok=False)
    egroup_brief_save(account=account, user=request.user, data=form.cleaned_data)
    return _respond(request, account, "egroup_brief", message="Brief saved.")


@require_GET
def brief_export(request: HtmxHttpRequest, salesforce_id: str, fmt: str) -> HttpResponse:
    """The brief as a Markdown (`md`) or plain-text (`txt`) download."""
    if fmt not in ("md", "txt"):
        raise Http404("Download the brief as .md or .txt")
    account = _account(request, salesforce_id, panel_facts=True)
    panel = selectors.account_engagement_panel(account)
    text = render_to_string("engagement/egroup_brief.md", {"eng": panel, "account": account})
    content_type = "text/markdown" if fmt == "md" else "text/plain"
    response = HttpResponse(text, content_type=f"{content_type}; charset=utf-8")
    filename = f"egroup-brief-{account.salesforce_id}.{fmt}"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
