"""The PK simulator page and the prediction panel that orders and sessions embed."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import SafeString
from django.views.decorators.http import require_POST

from ketamine_clinic.errors import UsageError
from ketamine_clinic.pk.regimen import Bolus, Regimen, Segment
from ketamine_clinic.pk.simulate import Patient as Covariates
from ketamine_clinic.pk.simulate import simulate
from ketamine_clinic.web.accounts.http import AuthedHttpRequest
from ketamine_clinic.web.accounts.roles import Capability
from ketamine_clinic.web.audit.services import Actor
from ketamine_clinic.web.lib.decorators import capability_required
from ketamine_clinic.web.lib.forms import form_error
from ketamine_clinic.web.patients.selectors import patients_visible_to
from ketamine_clinic.web.simulation.charts import prediction_figure_html
from ketamine_clinic.web.simulation.forms import SimulatorForm
from ketamine_clinic.web.simulation.models import Prediction
from ketamine_clinic.web.simulation.services import (
    DEFAULT_MODEL,
    PredictionView,
    prediction_run,
    time_grid,
)


def _regimen_from_dict(data: dict[str, Any]) -> Regimen:
    return Regimen(
        tuple(Segment(s["start_min"], s["end_min"], s["rate_mg_per_h"])
              for s in data["segments"]),
        tuple(Bolus(b["t_min"], b["mg"]) for b in data.get("boluses", [])),
        data["drug"])


def _context(view: PredictionView, what_if: Any = None,
             what_if_rate: float | None = None) -> dict[str, Any]:
    return {"view": view, "summary": view.record.summary,
            "figure": SafeString(prediction_figure_html(view, what_if=what_if)),
            "what_if_rate": what_if_rate}


@capability_required(Capability.RUN_SIMULATION)
def simulator(request: AuthedHttpRequest) -> HttpResponse:
    form = SimulatorForm(request.POST or None)
    context: dict[str, Any] = {"form": form}
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            view = prediction_run(
                actor=Actor.from_request(request), purpose="planner", model_id=data["model"],
                covariates=Covariates(weight_kg=data["weight_kg"],
                                      age_years=data.get("age_years")),
                regimen=form.regimen(), threshold_ng_per_ml=data.get("threshold_ng_per_ml"),
                with_population=data.get("population", False))
        except UsageError as exc:
            form_error(form, exc)
        else:
            context.update(_context(view))
    template = "simulation/simulator.html"
    if request.htmx:
        template += "#result"
    return render(request, template, context, status=200 if form.is_bound is False
                  or not form.errors else 400)


def render_prediction_panel(
    request: AuthedHttpRequest, *, title: str, covariates: Covariates, regimen: Regimen,
    model_id: str = DEFAULT_MODEL, threshold_ng_per_ml: float | None = None,
    now_min: float | None = None, patient: Any = None, order: Any = None,
    session: Any = None, purpose: str = "order",
) -> SafeString:
    """HTML for an order or session page: the chart, the key numbers and a what-if form."""
    try:
        view = prediction_run(
            actor=Actor.from_request(request, patient.site.code if patient else ""),
            purpose=purpose, model_id=model_id, covariates=covariates, regimen=regimen,
            threshold_ng_per_ml=threshold_ng_per_ml, now_min=now_min, patient=patient,
            order=order, session=session)
    except UsageError as exc:
        return render_to_string("simulation/_panel_error.html",
                                {"title": title, "error": exc}, request=request)
    return render_to_string("simulation/_panel.html", {"title": title, **_context(view)},
                            request=request)


@require_POST
@capability_required(Capability.RUN_SIMULATION)
def what_if(request: AuthedHttpRequest, prediction_id: int) -> HttpResponse:
    """Re-draw a stored prediction with every infusion segment at another rate."""
    base = Prediction.objects.filter(pk=prediction_id).first()
    if base is None or (base.patient_id is not None and not patients_visible_to(
            request.user).filter(pk=base.patient_id).exists()):
        raise Http404
    try:
        rate = float(request.POST.get("rate_mg_per_h", ""))
        if not rate >= 0:
            raise ValueError
    except ValueError:
        return HttpResponse("rate_mg_per_h: give a rate in mg/h (a number ≥ 0)", status=400)
    inputs = base.inputs
    covariates = Covariates(**inputs["patient"])
    regimen = _regimen_from_dict(inputs["regimen"])
    now_min = inputs.get("now_min")
    view = prediction_run(
        actor=Actor.from_request(request), purpose="what-if", model_id=base.model_id,
        covariates=covariates, regimen=regimen,
        threshold_ng_per_ml=inputs.get("threshold_ng_per_ml"), now_min=now_min,
        patient=base.patient, order=base.order, session=base.session)
    # From now on for a running session; the whole infusion for a plan.
    alternative = regimen.what_if(now_min or 0.0, rate)
    alt = simulate(base.model_id, covariates, alternative, time_grid(regimen),
                   threshold_ng_per_ml=inputs.get("threshold_ng_per_ml"))
    return render(request, "simulation/_panel.html",
                  {"title": f"What if the rate were {rate:g} mg/h"
                   + (" from now" if now_min else ""),
                   **_context(view, what_if=alt, what_if_rate=rate)})


def order_regimen(order: Any) -> Regimen:
    """The order's planned titration (its fastest allowed schedule) as a PK regimen."""
    c = order.signed_computed or order.computed
    stop_min = float(order.planned_duration_min)
    changes = [(float(step["t_min"]), float(step["rate_mg_per_h"]))
               for step in c["titration_table"] if float(step["t_min"]) < stop_min]
    bolus_mg = float(c.get("totals", {}).get("bolus_mg") or 0)
    drug = "esketamine" if order.drug == "esketamine" else "racemic"
    return Regimen.from_rate_changes(changes, stop_min, drug=drug,
                                     boluses=[(0.0, bolus_mg)] if bolus_mg > 0 else [])


def order_prediction_panel(request: AuthedHttpRequest, order: Any) -> SafeString:
    """The order page's prediction: plasma, effect site and norketamine, 12 h after."""
    patient = order.patient
    covariates = Covariates(weight_kg=float(order.weight_measurement.value_number),
                            age_years=float(patient.age_on(timezone.localdate())),
                            sex=patient.sex_at_birth
                            if patient.sex_at_birth in ("female", "male") else None)
    return render_prediction_panel(
        request, title="Predicted concentrations for the planned titration "
        "(fastest allowed schedule)", covariates=covariates, regimen=order_regimen(order),
        patient=patient, order=order, purpose="order")
