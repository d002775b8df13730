"""The key personas (Development Lead, Software Security Lead) a contact holds."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from portfolio.models import Contact, KeyPersona, Persona


@transaction.atomic
def contact_personas_set(*, contact: Contact, personas: list[str]) -> Contact:
    """Set the key personas a contact holds (Development Lead, Software Security Lead,
    both, or none: an empty list clears them).

    "edit the `GitLab Role` field and select the persona(s) that apply to them"
    (csm-account-engagement.md, Capturing customer personas)."""
    unknown = sorted(set(personas) - set(Persona.values))
    if unknown:
        raise ValidationError({"personas": f"Unknown persona {', '.join(map(repr, unknown))}."})
    # The rows are seeded by a migration; a database flushed since (tests) gets them back.
    rows = [KeyPersona(key=k) for k in sorted(set(personas))]
    KeyPersona.objects.bulk_create(rows, ignore_conflicts=True)
    contact.personas.set(rows)
    return contact
