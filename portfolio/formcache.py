"""Unbound forms rendered once per process (issue 12.5: render less).

Django renders a form through a template per field, label, widget and option: the
engagement panel's eight forms took 90% of its rendering time, the same HTML for every
request. `RenderCached` keeps the HTML of an *unbound* form keyed by everything it is made
of (class, prefix, ids, and per field its type, widget, attributes, label, help text,
required/disabled, initial value and choices), so two forms with the same key render the
same HTML by construction: nothing to invalidate. A `ModelChoiceField`'s rows are read
once for the key and kept for the render (the query a render would run anyway). Not
cached: bound forms (their values and errors) and a render given its own context or
renderer."""

from __future__ import annotations

from collections import OrderedDict
from threading import Lock

from django import forms

MAX_ENTRIES = 2048

_rendered: OrderedDict[tuple, str] = OrderedDict()
_lock = Lock()


def _choices_key(field: forms.Field) -> str | None:
    if isinstance(field, forms.ModelChoiceField):
        # The queryset runs once here, as rendering would have run it; the field keeps the
        # rows, so a miss renders from them without a second query.
        choices = list(iter(field.choices))  # iter(): list() would ask its len(), a COUNT
        field.choices = choices
        return repr([(str(value), str(label)) for value, label in choices])
    choices = getattr(field, "choices", None)
    return repr(list(choices)) if choices is not None else None


def _field_key(form: forms.BaseForm, name: str, field: forms.Field) -> tuple:
    widget = field.widget
    return (
        name,
        type(field),
        type(widget),
        repr(sorted(widget.attrs.items())),
        getattr(widget, "format", None),
        _choices_key(field),
        repr(form.get_initial_for_field(field, name)),
        str(field.label),
        str(field.help_text),
        field.required,
        field.disabled,
        field.show_hidden_initial,
    )


class RenderCached:
    """Form mixin: the rendered HTML of an unbound form, computed once per key."""

    def _render_key(self, template_name, context, renderer) -> tuple | None:
        if self.is_bound or context is not None or renderer is not None:
            return None
        fields = tuple(_field_key(self, name, field) for name, field in self.fields.items())
        return (
            type(self),
            template_name or self.template_name,
            self.prefix,
            self.auto_id,
            self.label_suffix,
            self.use_required_attribute,
            type(self.renderer),
            fields,
        )

    def render(self, template_name=None, context=None, renderer=None):
        key = self._render_key(template_name, context, renderer)
        if key is None:
            return super().render(template_name, context, renderer)
        with _lock:
            html = _rendered.get(key)
            if html is not None:
                _rendered.move_to_end(key)
                return html
        html = super().render(template_name, context, renderer)
        with _lock:
            _rendered[key] = html
            if len(_rendered) > MAX_ENTRIES:
                _rendered.popitem(last=False)
        return html
