"""Writes of the triage app (STYLE.md: `<entity>_<verb>`, keyword-only, typed,
`transaction.atomic`, Celery tasks enqueued on commit), one module per sub-domain; import
the one that owns the function (`from triage.services import issues`):

- `assessments`: the TAM's health signals, the automatic health run, the TAM's colour
  (confirm or override), and what a colour change sets off (write-back, triage lifecycle);
- `issues`: triage issues (open, move on the board, review, edit, weekly updates, team),
  the Customer ER call, the daily refresh from the accounts;
- `reconcile`: the five-minute check's one-click fixes.

`assessments` and `issues` call each other (a colour change opens or moves the issue; a
move on the board sets the colour): each imports the other as a module. Reads, the health
signals among them, are in `triage.selectors`; the pure rules in `triage.health`; the
GitLab mirror in `triage.mirror`.
"""
