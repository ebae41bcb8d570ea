"""Order pages. Views validate and translate; services write; selectors read."""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from ketamine_clinic.clinical.dosing import WeightMeasurement, check_order
from ketamine_clinic.clinical.units import parse_bag, parse_weight_kg
from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.http import AuthedHttpRequest
from ketamine_clinic.web.accounts.roles import Capability
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor, audit_record
from ketamine_clinic.web.lib.charts import chart_html
from ketamine_clinic.web.lib.decorators import capability_required
from ketamine_clinic.web.lib.forms import form_error, post_and_report
from ketamine_clinic.web.orders import selectors, services
from ketamine_clinic.web.orders.dosing import plan_of, rules_of, weight_of
from ketamine_clinic.web.orders.forms import (
    ChangeForm,
    OrderForm,
    ReasonForm,
    ReportForm,
    VerifyForm,
    overrides_from,
    reason_choices,
)
from ketamine_clinic.web.orders.models import Order
from ketamine_clinic.web.orders.templatetags.order_tags import qlabel
from ketamine_clinic.web.patients.models import Patient
from ketamine_clinic.web.patients.selectors import (
    latest_weight,
    patient_get_unaudited,
    patient_read_record,
)
from ketamine_clinic.web.protocols.models import ProtocolVersion
from ketamine_clinic.web.protocols.selectors import order_allergy_summary
from ketamine_clinic.web.simulation.views import order_prediction_panel

# Form fields named by the services' errors that have another name on the page.
FIELD_ALIASES = {"weight": "weight_kg"}


def _actor(request: AuthedHttpRequest, order: Order | None = None) -> Actor:
    return Actor.from_request(request, order.patient.site.code if order else "")


def _patient(request: AuthedHttpRequest, patient_id: int) -> Patient:
    """The patient for a write or a form; the view records the read where it is one."""
    return patient_get_unaudited(request.user, patient_id, Actor.from_request(request))


def _order(request: AuthedHttpRequest, order_id: int) -> Order:
    """The order for a write or a form; the view records the read where it is one."""
    return selectors.order_get_unaudited(request.user, order_id, Actor.from_request(request))


# --------------------------------------------------------------------------- list


@capability_required(Capability.VERIFY_ORDER)
def order_list(request: AuthedHttpRequest) -> HttpResponse:
    groups = selectors.orders_awaiting(request.user)
    audit_record(actor=Actor.from_request(request), action=AuditAction.ORDER_LIST,
                 detail={k: len(v) for k, v in groups.items()})
    return render(request, "orders/order_list.html", {"groups": groups})


# --------------------------------------------------------------------------- writing


def _protocol_choice(request: AuthedHttpRequest, patient: Patient,
                     fixed: ProtocolVersion | None = None) -> tuple[Any, list[Any]]:
    treatable = selectors.treatable_protocol_versions(patient)
    if fixed is not None:
        return fixed, treatable
    wanted = request.POST.get("protocol_version") or request.GET.get("protocol_version")
    for pv, _ in treatable:
        if str(pv.pk) == str(wanted):
            return pv, treatable
    return (treatable[0][0] if treatable else None), treatable


def _write_kwargs(form: OrderForm, request: AuthedHttpRequest) -> dict[str, Any]:
    data = {k: v for k, v in form.cleaned_data.items() if k != "change_reason"}
    return {**data, "overrides": overrides_from(request.POST),
            "confirmed": request.POST.getlist("confirm")}


def _preview(patient: Patient, pv: ProtocolVersion, post: Any) -> tuple[Any, str]:
    """The core's check of the posted order, nothing stored: (check dict or None, error)."""
    try:
        weight_text = (post.get("weight_kg") or "").strip()
        if weight_text:
            weight = WeightMeasurement(parse_weight_kg(weight_text, field="weight_kg"),
                                       timezone.localdate())
        else:
            row = latest_weight(patient)
            if row is None:
                raise UsageError("weight", "no weight is recorded: weigh the patient")
            weight = weight_of(row, patient)
        plan = plan_of(start_rate=post.get("start_rate", ""), max_rate=post.get("max_rate", ""),
                       titration_step=post.get("titration_step", ""),
                       min_step_interval_min=post.get("min_step_interval_min", ""),
                       planned_duration_min=post.get("planned_duration_min", ""),
                       sessions=services._whole(post.get("planned_sessions", ""),
                                                "planned_sessions"),
                       bolus=post.get("bolus", ""))
        check = check_order(rules=rules_of(pv), weight=weight,
                            bag=parse_bag(post.get("bag", ""), field="bag"), plan=plan,
                            on=timezone.localdate())
    except UsageError as exc:
        return None, str(exc)
    return check.to_dict(), ""


def _form_page(request: AuthedHttpRequest, patient: Patient, *, old: Order | None = None
               ) -> HttpResponse:
    pv, treatable = _protocol_choice(request, patient, old.protocol_version if old else None)
    context: dict[str, Any] = {"patient": patient, "treatable": treatable, "pv": pv,
                               "old": old, "reasons": reason_choices()}
    if pv is None:
        return render(request, "orders/order_form.html", context)
    protocol = pv.protocol()
    form_class = ChangeForm if old else OrderForm
    initial = _initial_from(old) if old else {}
    weight = latest_weight(patient)
    form = form_class(request.POST or None, protocol=protocol, initial=initial,
                      weight_kg=None if weight is None
                      else Fraction(weight.number))  # a capped protocol caps itself
    context.update(form=form, protocol=protocol, weight=weight)
    if request.method == "POST" and form.is_valid():
        try:
            if old is not None:
                order = services.order_change(
                    actor=Actor.from_request(request), order=old,
                    change_reason=form.cleaned_data["change_reason"],
                    **_write_kwargs(form, request))
            else:
                order = services.order_write(actor=Actor.from_request(request),
                                             patient=patient, protocol_version=pv,
                                             **_write_kwargs(form, request))
        except services.LimitRefusal as exc:
            form_error(form, exc, FIELD_ALIASES)
            context["c"] = exc.check.to_dict()
        except UsageError as exc:
            form_error(form, exc, FIELD_ALIASES)
        else:
            messages.success(request, f"Order {order.pk} written as a draft; it needs a "
                                      "physician's signature.")
            return redirect("order_detail", order_id=order.pk)
    if request.method == "POST" and "c" not in context:
        context["c"], context["preview_error"] = _preview(patient, pv, request.POST)
    return render(request, "orders/order_form.html", context,
                  status=400 if request.method == "POST" else 200)


def _initial_from(order: Order) -> dict[str, Any]:
    return {
        "vial_strength_mg_per_ml": f"{order.vial_strength_mg_per_ml.normalize():f}",
        "bag": f"{order.bag_drug_mg.normalize():f} mg in {order.bag_volume_ml.normalize():f} mL",
        "start_rate": order.start_rate_text, "titration_step": order.titration_step_text,
        "max_rate": order.max_rate_text, "min_step_interval_min": order.min_step_interval_min,
        "planned_duration_min": order.planned_duration_min, "bolus": order.bolus_text,
        "planned_sessions": order.series.planned_sessions,
        "spacing_days": order.series.spacing_days,
        "premedications": [m["drug"] for m in order.premedications],
        "rescue_medications": [m["drug"] for m in order.rescue_medications],
    }


@capability_required(Capability.WRITE_ORDER)
def order_new(request: AuthedHttpRequest, patient_id: int) -> HttpResponse:
    patient = _patient(request, patient_id)
    if request.method == "GET":
        patient_read_record(Actor.from_request(request), patient, AuditAction.ORDER_NEW_FORM)
    return _form_page(request, patient)


@require_POST
@capability_required(Capability.WRITE_ORDER)
def order_preview(request: AuthedHttpRequest, patient_id: int) -> HttpResponse:
    """The dose table for the form as typed so far (htmx); nothing is stored."""
    patient = _patient(request, patient_id)
    pv, _ = _protocol_choice(request, patient)
    if pv is None:
        raise Http404("no protocol version the patient may be treated under")
    c, error = _preview(patient, pv, request.POST)
    patient_read_record(Actor.from_request(request), patient, AuditAction.ORDER_PREVIEW,
                        detail={"outcome": c["outcome"] if c else "error"})
    return render(request, "orders/order_form.html#preview",
                  {"c": c, "preview_error": error, "reasons": reason_choices(),
                   "posted": request.POST})


# --------------------------------------------------------------------------- one order


def _detail_context(request: AuthedHttpRequest, order: Order) -> dict[str, Any]:
    visible = selectors.can_see_numbers(request.user, order)
    c = order.signed_computed or order.computed
    # A synthetic demo order (outcomes' cohort loader) has no dose computation stored.
    synthetic = bool(c.get("synthetic"))
    overridden = {o["quantity"] for o in order.overrides}
    return {
        "order": order, "patient": order.patient,
        "c": c if visible and not synthetic else None,
        "numbers_hidden": not visible, "synthetic": synthetic,
        "events": order.events.select_related("by"),
        "limit_events": order.limit_events.select_related("by").order_by("at", "id"),
        "replaced_by": Order.objects.filter(replaces=order).first(),
        "reasons": reason_choices(),
        "sign_needs": [lim for lim in c.get("limits", ())
                       if lim["status"] == "exceeded" and lim["kind"] == "soft"
                       and lim["limit"] not in overridden],
        "verify_form": VerifyForm(), "reason_form": ReasonForm(),
        "me": request.user,
        "allergies": order_allergy_summary(order),
        # The prediction shows rates, so it stays hidden with them until the double check.
        "prediction": order_prediction_panel(request, order)
        if visible and not synthetic
        and request.user.can(Capability.RUN_SIMULATION)
        else None,
    }


@require_GET
@capability_required(Capability.VIEW_PATIENTS)
def order_detail(request: AuthedHttpRequest, order_id: int) -> HttpResponse:
    order = selectors.order_get_for(request.user, order_id, Actor.from_request(request),
                                    read=AuditAction.ORDER_VIEW)
    return render(request, "orders/order_detail.html", _detail_context(request, order))


@require_POST
@capability_required(Capability.SIGN_ORDER)
def order_sign(request: AuthedHttpRequest, order_id: int) -> HttpResponse:
    order = _order(request, order_id)
    post_and_report(request, lambda: services.order_sign(
        actor=_actor(request, order), order=order, overrides=overrides_from(request.POST),
        confirmed=request.POST.getlist("confirm")),
        done="Signed. A second clinician must now verify the bag concentration and the first "
             "pump rate.", refused="Not signed.")
    return redirect("order_detail", order_id=order.pk)


@capability_required(Capability.VERIFY_ORDER)
def order_verify(request: AuthedHttpRequest, order_id: int) -> HttpResponse:
    order = _order(request, order_id)
    form = VerifyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.order_verify(actor=_actor(request, order), order=order,
                                  **form.cleaned_data)
        except UsageError as exc:
            form_error(form, exc, FIELD_ALIASES)
        else:
            messages.success(request, "Verified: the order is active.")
            return redirect("order_detail", order_id=order.pk)
    else:
        selectors.order_read_record(_actor(request), order, AuditAction.ORDER_VERIFY_FORM)
    c = order.signed_computed or order.computed
    rules = c.get("rules", {})
    basis = rules.get("dosing_basis", "mg/h")
    start = c.get("start", {})
    key = "rate_mg_per_kg_per_h" if basis == "mg/kg/h" else "rate_mg_per_h"
    return render(request, "orders/order_verify.html", {
        "order": order, "patient": order.patient, "form": form,
        "ordered_start": start.get(key), "basis": basis,
        "dosing_weight": c.get("dosing_weight", {}),
        "events": order.events.filter(kind__startswith="verif").select_related("by"),
    }, status=400 if request.method == "POST" else 200)


@require_POST
@capability_required(Capability.DISCONTINUE_ORDER)
def order_discontinue(request: AuthedHttpRequest, order_id: int) -> HttpResponse:
    order = _order(request, order_id)
    post_and_report(request, lambda: services.order_discontinue(
        actor=_actor(request, order), order=order, reason=request.POST.get("reason", "")),
        done="Order discontinued; it stays on record.", refused="Not discontinued.")
    return redirect("order_detail", order_id=order.pk)


@require_POST
@capability_required(Capability.DISCONTINUE_ORDER)
def order_complete(request: AuthedHttpRequest, order_id: int) -> HttpResponse:
    order = _order(request, order_id)
    post_and_report(request, lambda: services.order_complete(
        actor=_actor(request, order), order=order, note=request.POST.get("reason", "")),
        done="Order completed.", refused="Not completed.")
    return redirect("order_detail", order_id=order.pk)


@capability_required(Capability.WRITE_ORDER)
def order_change(request: AuthedHttpRequest, order_id: int) -> HttpResponse:
    order = _order(request, order_id)
    if order.status not in (Order.Status.DRAFT, Order.Status.SIGNED, Order.Status.ACTIVE):
        messages.error(request, f"This order is {order.get_status_display().lower()}: "
                                "write a new order instead.")
        return redirect("order_detail", order_id=order.pk)
    if not selectors.can_see_numbers(request.user, order):
        raise PermissionDenied("Only the prescriber may change an order awaiting its check.")
    if request.method == "GET":
        selectors.order_read_record(_actor(request), order, AuditAction.ORDER_CHANGE_FORM)
    return _form_page(request, order.patient, old=order)


@require_GET
@capability_required(Capability.VIEW_PATIENTS)
def order_pdf(request: AuthedHttpRequest, order_id: int) -> HttpResponse:
    """The printable order and pump-programming sheet (WeasyPrint)."""
    # WeasyPrint (and its fonts) loads only when a PDF is made.
    from weasyprint import HTML

    order = _order(request, order_id)
    if not selectors.can_see_numbers(request.user, order):
        raise PermissionDenied("The sheet is available once the second check is done.")
    if (order.signed_computed or order.computed).get("synthetic"):
        messages.error(request, "This is a synthetic demo order: it has no dose computation, "
                                "so there is no pump-programming sheet to print.")
        return redirect("order_detail", order_id=order.pk)
    selectors.order_read_record(_actor(request), order, AuditAction.ORDER_PDF)
    context = _detail_context(request, order)
    context["protocol"] = order.protocol_version.protocol()
    context["printed_at"] = timezone.localtime()
    html = render_to_string("orders/order_pdf.html", context, request=request)
    pdf = HTML(string=html, base_url=request.build_absolute_uri("/")).write_pdf()
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = (
        f'inline; filename="order-{order.pk}-{order.patient.mrn}.pdf"')
    response["Cache-Control"] = "no-store"
    return response


# --------------------------------------------------------------------------- patient panel


def patient_panel(request: AuthedHttpRequest, patient: Patient) -> str:
    """The patient page's series and orders, and a "new order" action."""
    series = selectors.patient_series(patient)
    can_write = request.user.can(Capability.WRITE_ORDER)
    treatable = selectors.treatable_protocol_versions(patient) if can_write else []
    return render_to_string("orders/patient_panel.html",
                            {"patient": patient, "series": series, "can_write": can_write,
                             "treatable": treatable}, request=request)


# --------------------------------------------------------------------------- quality report


@require_GET
@capability_required(Capability.VIEW_REPORTS)
def limit_report(request: AuthedHttpRequest) -> HttpResponse:
    today = timezone.localdate()
    form = ReportForm(request.GET or {"start": today - timedelta(days=90), "end": today})
    report = None
    chart = ""
    if form.is_valid():
        report = selectors.limit_report(request.user, form.cleaned_data["start"],
                                        form.cleaned_data["end"])
        chart = _report_chart(report)
        audit_record(actor=Actor.from_request(request), action=AuditAction.ORDER_LIMIT_REPORT,
                     detail={"start": report.start.isoformat(), "end": report.end.isoformat(),
                             "events": len(report.events)})
    return render(request, "orders/limit_report.html",
                  {"form": form, "report": report, "chart": chart})


OUTCOME_COLOURS = {"blocked": "#b42318", "hit": "#9a6700", "overridden": "#1f5f8b",
                   "confirmed": "#5b6b7c"}


def _report_chart(report: selectors.LimitReport) -> str:
    """Events by limit (x) stacked by outcome, one panel each for prescriber and protocol."""
    if not report.events:
        return ""
    # plotly loads only when a chart is drawn (a fifth of a second at start-up).
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots


    fig = make_subplots(rows=1, cols=3, subplot_titles=("By limit", "By prescriber",
                                                         "By protocol"))
    outcomes = sorted(report.by_outcome)
    for col, counter, label in ((1, report.by_quantity, qlabel), (2, report.by_prescriber, str),
                                (3, report.by_protocol, str)):
        keys = sorted({k[0] for k in counter})
        for outcome in outcomes:
            fig.add_trace(go.Bar(
                x=[label(k) for k in keys], y=[counter.get((k, outcome), 0) for k in keys],
                name=outcome, legendgroup=outcome, showlegend=col == 1,
                marker_color=OUTCOME_COLOURS.get(outcome)), row=1, col=col)
    fig.update_layout(barmode="stack", height=420, margin={"l": 40, "r": 10, "t": 40, "b": 120},
                      legend={"orientation": "h", "y": 1.15}, yaxis_title="events")
    return str(chart_html(fig, config={"responsive": True}))
