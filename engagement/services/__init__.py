"""Writes of the engagement lifecycle (STYLE.md: `<entity>_<verb>`, keyword-only, typed),
one module per sub-domain; import the one that owns the function
(`from engagement.services import projects`):

- `checklist`: engagements and their checklists, the TAM assignment, the welcome call;
- `projects`: the collaboration project in GitLab (request, provisioning, the move to
  post-sales);
- `customer_issues`: the customer's open questions mirrored from the project;
- `cadence_calls`: cadence calls and EBRs with their outcome;
- `success_plan`: objectives, tasks and the derived `Account.success_plan`;
- `personas`: the key personas a contact holds;
- `disengagement`: recording a disengagement;
- `emails`: versioned e-mail templates and the outbox;
- `brief`: the E-Group call brief;
- `_common`: the helper they share.

Reads are in `engagement.selectors`. Outward steps (GitLab, SMTP) run in Celery tasks
enqueued with `transaction.on_commit`; the services they call are safe to run twice. The
TAM assignment and the disengagement write the TAM back to Salesforce through
`portfolio.services.salesforce_writeback_enqueue`.
"""
