"""The US Enterprise priority flowchart as server-rendered SVG (portfolio/charts.py has the
other charts and the shared SVG helpers: no script, strict CSP, a `<desc>` in words).

The boxes are drawn from the rule registry (`FLOWS["pre"]` then `FLOWS["us_enterprise"]`,
each rule's question and outcome) written with the rule set's parameters, so the picture
says "next 9 months" when the rule set that decided says 9: the same words as the trace.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

from django.utils.safestring import SafeString

from portfolio.charts import ACCENT, INK, MUTED, svg, svg_text
from prioritization.rules import FLOWS, LABELS, RULES, Params, rule_name

# The handbook's chart ends in the two outcomes rather than asking them: "p1exception-- No
# -->p2" (default_p2) and "p1-.->p2exception" (p2_exception) are drawn as edges.
_ENDINGS = ("default_p2", "p2_exception")
US_ENTERPRISE_FLOW: tuple[str, ...] = FLOWS["pre"] + tuple(
    rule for rule in FLOWS["us_enterprise"] if rule not in _ENDINGS
)
_LINE_CHARS = 60  # a question wraps onto a second line past this (12 px text, 440 px box)


def flowchart_steps(params: Params) -> list[tuple[str, str, str]]:
    """(rule id, box text, outcome when Yes) for every box, in the order they are asked."""
    return [
        (rule, RULES[rule].question_for(params), LABELS[RULES[rule].outcome])
        for rule in US_ENTERPRISE_FLOW
    ]


def decision_params(decision: Any, ruleset: Any) -> Params:
    """The parameters the stored decision was made with (its rule-set version), else the
    account's rule set as it is now, else the handbook defaults."""
    version = getattr(decision, "ruleset_version", None)
    if version is not None:
        return Params.from_values(version.values)
    if ruleset is not None:
        return ruleset.params()
    return Params(model=getattr(decision, "model", None) or "us_enterprise")


def priority_flowchart(decision: Any, ruleset: Any) -> SafeString | None:
    """The picture of a stored decision, for the models drawn as a flowchart (the US
    Enterprise one); None for the others, which the page shows as a checklist."""
    if decision is None or decision.model != "us_enterprise":
        return None
    return us_enterprise_flowchart(
        decision.trace, decision.priority, decision_params(decision, ruleset)
    )


def _is_yes(answer: Any) -> bool:
    if isinstance(answer, str):
        return answer.strip().lower() in {"yes", "true", "y", "1"}
    return bool(answer)


def us_enterprise_flowchart(
    trace: Sequence[dict], priority: int | None, params: Params | None = None
) -> SafeString:
    """The handbook's flowchart with the path the decision took highlighted.

    `trace` is the decision's list of steps ({"rule", "question", "answer", "evidence"});
    a step's rule id names a box, its answer the edge taken (Yes to the outcome, No down
    to the next question). `p2_exception` after P1 and `default_p2` (no rule fired) end
    at P2. `params` words the questions (default: the handbook's numbers).
    """
    params = params or Params(model="us_enterprise")
    steps = flowchart_steps(params)
    answers = {step.get("rule"): _is_yes(step.get("answer")) for step in trace}
    evidence = {step.get("rule"): str(step.get("evidence") or "") for step in trace}
    box_w, box_h, gap, x0, y0 = 440, 54, 26, 16, 16
    out_x = x0 + box_w + 90
    out_w = 120
    rows = len(steps)
    height = y0 + rows * (box_h + gap) + 190
    width = out_x + out_w + 200
    body = [
        '<defs><marker id="fc-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="9" '
        'markerHeight="9" markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
        '<path d="M0,0L10,5L0,10z" '
        f'fill="{MUTED}"/></marker><marker id="fc-arrow-on" viewBox="0 0 10 10" refX="9" '
        'refY="5" markerWidth="10" markerHeight="10" markerUnits="userSpaceOnUse" '
        'orient="auto-start-reverse">'
        f'<path d="M0,0L10,5L0,10z" fill="{ACCENT}"/></marker></defs>'
    ]

    def edge(x1, y1, x2, y2, on: bool, label: str = "", dashed: bool = False, lx=None, ly=None):
        colour = ACCENT if on else "#9aa3b2"
        marker = "fc-arrow-on" if on else "fc-arrow"
        dash = ' stroke-dasharray="5 4"' if dashed else ""
        cls = "fc-edge taken" if on else "fc-edge"
        parts = [
            f'<path class="{cls}" d="M{x1},{y1} L{x2},{y2}" stroke="{colour}" '
            f'stroke-width="{3 if on else 1.5}" fill="none"{dash} marker-end="url(#{marker})"/>'
        ]
        if label:
            parts.append(
                svg_text(
                    lx if lx is not None else (x1 + x2) / 2 + 4,
                    ly if ly is not None else (y1 + y2) / 2 - 4,
                    label,
                    size=11,
                    fill=ACCENT if on else MUTED,
                    weight="700" if on else "normal",
                )
            )
        return "".join(parts)

    def node(x, y, w, h, text, state: str, shape: str = "rect", sub: str = "") -> str:
        # state: "taken" (asked and on the path), "idle" (not reached), "final" (the result)
        fill = {"taken": "#e8eafc", "idle": "#fff", "final": ACCENT}[state]
        stroke = {"taken": ACCENT, "idle": "#9aa3b2", "final": ACCENT}[state]
        ink = "#fff" if state == "final" else (INK if state == "taken" else MUTED)
        rx = h / 2 if shape == "pill" else 6
        sw = 1 if state == "idle" else 2
        lines = textwrap.wrap(text, _LINE_CHARS)[:2] or [""]
        if sub:
            lines.append(sub[:68])
        top = y + h / 2 - 7 * (len(lines) - 1) + 4  # baseline of the first line, centred
        parts = [
            f'<g class="fc-node fc-{state}"><rect x="{x}" y="{y}" width="{w}" height="{h}" '
            f'rx="{rx}" fill="{fill}" stroke="{stroke}" stroke-width="{sw}"/>'
        ]
        for i, line in enumerate(lines):
            is_sub = bool(sub) and i == len(lines) - 1
            parts.append(
                svg_text(
                    x + w / 2,
                    top + 14 * i,
                    line,
                    anchor="middle",
                    size=10 if is_sub else 12,
                    fill=ink,
                    weight="600" if state != "idle" and not is_sub else "normal",
                )
            )
        parts.append("</g>")
        return "".join(parts)

    final = LABELS.get(priority or 0, "")
    # Questions down the left; Yes edges to the outcomes on the right.
    p1_rows = [i for i, s in enumerate(steps) if s[2] == "P1"]
    p1_top = y0 + p1_rows[0] * (box_h + gap)
    p1_bottom = y0 + p1_rows[-1] * (box_h + gap) + box_h
    reached_p1 = False
    for i, (rule, text, outcome) in enumerate(steps):
        y = y0 + i * (box_h + gap)
        asked = rule in answers
        yes = answers.get(rule, False)
        body.append(
            node(
                x0,
                y,
                box_w,
                box_h,
                text,
                "taken" if asked else "idle",
                sub=evidence.get(rule, "") if asked else "",
            )
        )
        cy = y + box_h / 2
        body.append(edge(x0 + box_w, cy, out_x, cy, asked and yes, "Yes"))
        if outcome == "P1":
            reached_p1 = reached_p1 or (asked and yes)
        else:
            body.append(
                node(
                    out_x,
                    y,
                    out_w,
                    box_h,
                    outcome,
                    "final" if asked and yes and final == outcome else "idle",
                    shape="pill",
                )
            )
        if i < rows - 1:
            body.append(
                edge(
                    x0 + box_w / 2,
                    y + box_h,
                    x0 + box_w / 2,
                    y + box_h + gap,
                    asked and not yes,
                    "No",
                    lx=x0 + box_w / 2 + 6,
                    ly=y + box_h + 13,
                )
            )
    body.append(
        node(
            out_x,
            p1_top,
            out_w,
            p1_bottom - p1_top,
            "Priority 1",
            "final" if final == "P1" else ("taken" if reached_p1 else "idle"),
            shape="rect",
        )
    )
    # P1 -.-> P2 exception -- Yes --> P2 ; last question -- No --> P2
    ex_y = p1_bottom + 40
    p2_y = ex_y + box_h + 40
    p2_asked = "p2_exception" in answers
    p2_yes = answers.get("p2_exception", False)
    body.append(edge(out_x + out_w / 2, p1_bottom, out_x + out_w / 2, ex_y, p2_asked, dashed=True))
    body.append(
        node(
            out_x - 60,
            ex_y,
            out_w + 120,
            box_h,
            RULES["p2_exception"].question_for(params),
            "taken" if p2_asked else "idle",
            sub=evidence.get("p2_exception", "") if p2_asked else "",
        )
    )
    last_y = y0 + (rows - 1) * (box_h + gap) + box_h
    default_taken = "default_p2" in answers or (
        answers.get("p1_exception") is False and final == "P2"
    )
    body.append(
        edge(
            x0 + box_w / 2,
            last_y,
            x0 + box_w / 2,
            p2_y,
            default_taken,
            "No",
            lx=x0 + box_w / 2 + 6,
            ly=last_y + 16,
        )
    )
    body.append(
        edge(out_x + out_w / 2, ex_y + box_h, x0 + box_w / 2 + 70, p2_y, p2_asked and p2_yes, "Yes")
    )
    body.append(
        node(
            x0 + box_w / 2 - 70,
            p2_y,
            140,
            box_h,
            "Priority 2",
            "final" if final == "P2" else "idle",
            shape="pill",
        )
    )
    body.append(
        svg_text(
            x0,
            height - 8,
            "Exceptions: see priority exceptions in the handbook",
            size=10,
            fill=MUTED,
        )
    )
    path: list[str] = [s["rule"] for s in trace if s.get("rule")]
    desc = (
        "US Enterprise prioritization flowchart. Path taken: "
        + " → ".join(f"{rule_name(r)} ({'yes' if answers.get(r) else 'no'})" for r in path)
        + (f"; result {final}." if final else ".")
    )
    return svg(width, height, "How this priority was decided", desc, body, "chart-flowchart")
