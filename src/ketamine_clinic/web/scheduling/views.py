"""Scheduling pages: the calendar (a day and a week per site), booking a series from a
verified order with its conflicts and free slots, a visit's page (reschedule, cancel,
start), a site's chairs and hours, and the patient page's visits panel."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_POST

from ketamine_clinic.clinical.scheduling import Proposal
from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.http import AuthedHttpRequest
from ketamine_clinic.web.accounts.models import Site
from ketamine_clinic.web.accounts.roles import Capability
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor, audit_read, audit_record
from ketamine_clinic.web.lib.decorators import capability_required
from ketamine_clinic.web.lib.forms import form_error, refusal_message
from ketamine_clinic.web.patients.selectors import patient_get_for, patient_get_unaudited
from ketamine_clinic.web.scheduling import selectors, services
from ketamine_clinic.web.scheduling.forms import (
    BookSeriesForm,
    CancelForm,
    ChairForm,
    ChecklistForm,
    RescheduleForm,
)
from ketamine_clinic.web.scheduling.models import Chair, OpeningHours, Visit


def _actor(request: AuthedHttpRequest, site: Site | None = None) -> Actor:
    return Actor.from_request(request, site_code=site.code if site else "")


def _site(request: AuthedHttpRequest, code: str) -> Site:
    site = selectors.sites_visible_to(request.user).filter(code=code).first()
    if site is None:
        raise Http404("No such site")
    return site


def _day(raw: str, site: Site) -> date:
    if raw == "today":
        return timezone.localtime(timezone.now(), selectors.site_tz(site)).date()
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise Http404("No such day") from exc


def _chair_codes(site: Site) -> list[str]:
    return list(Chair.objects.filter(site=site, active=True).order_by("code")
                .values_list("code", flat=True))


@capability_required(Capability.VIEW_PATIENTS)
def calendar_home(request: AuthedHttpRequest) -> HttpResponse:
    site = selectors.sites_visible_to(request.user).first()
    if site is None:
        raise Http404("You work at no site")
    return redirect("calendar_day", site=site.code, day="today")


@capability_required(Capability.VIEW_PATIENTS)
def calendar_day(request: AuthedHttpRequest, site: str, day: str) -> HttpResponse:
    s = _site(request, site)
    d = _day(day, s)
    grid = selectors.day_grid(s, d)
    audit_record(actor=_actor(request, s), action=AuditAction.CALENDAR_DAY, object_type="site",
                 object_id=s.pk, detail={"day": d.isoformat(),
                                         "visits": [v.pk for c in grid.chairs for v in c.visits]})
    return render(request, "scheduling/day.html", {
        "grid": grid, "site": s, "sites": selectors.sites_visible_to(request.user),
        "prev": d - timedelta(days=1), "next": d + timedelta(days=1),
        "monday": d - timedelta(days=d.weekday())})


@capability_required(Capability.VIEW_PATIENTS)
def calendar_week(request: AuthedHttpRequest, site: str, day: str) -> HttpResponse:
    s = _site(request, site)
    d = _day(day, s)
    monday = d - timedelta(days=d.weekday())
    days = selectors.week_grid(s, monday)
    audit_record(actor=_actor(request, s), action=AuditAction.CALENDAR_WEEK, object_type="site",
                 object_id=s.pk, detail={"week_of": monday.isoformat()})
    return render(request, "scheduling/week.html", {
        "days": days, "site": s, "monday": monday,
        "sites": selectors.sites_visible_to(request.user),
        "prev": monday - timedelta(days=7), "next": monday + timedelta(days=7)})


# --------------------------------------------------------------------------- booking


def _pick_value(start: datetime, chair: str) -> str:
    return f"{start.isoformat()}|{chair}"


def _rows(proposals: list[Proposal], tz: Any) -> list[dict[str, Any]]:
    """What the proposal table shows: each visit, its conflicts, the slots to pick."""
    rows = []
    for p in proposals:
        options = []
        if p.ok and p.chair is not None:
            options.append((_pick_value(p.start, p.chair),
                            f"as proposed: {timezone.localtime(p.start, tz):%a %d %b %H:%M}, "
                            f"chair {p.chair}"))
        for alt in p.alternatives:
            options.append((_pick_value(alt.start, alt.chair),
                            f"{timezone.localtime(alt.start, tz):%a %d %b %H:%M}, "
                            f"chair {alt.chair}"))
        rows.append({"p": p, "options": options,
                     "local_start": timezone.localtime(p.start, tz),
                     "local_end": timezone.localtime(p.end, tz),
                     "local_infusion_end": timezone.localtime(p.infusion_end, tz)})
    return rows


def _parse_picks(request: AuthedHttpRequest) -> tuple[list[services.VisitRequest], list[int]]:
    picks, skipped = [], []
    for key in request.POST:
        if not key.startswith("pick-"):
            continue
        value = request.POST.get(key, "")
        number = int(key.removeprefix("pick-"))
        if value == "skip":
            skipped.append(number)
            continue
        raw_start, _, chair = value.partition("|")
        try:
            start = datetime.fromisoformat(raw_start)
        except ValueError as exc:
            raise UsageError(f"visit {number}", "the chosen slot is not a time") from exc
        picks.append(services.VisitRequest(number, start, chair or None))
    return sorted(picks, key=lambda r: r.number), sorted(skipped)


@capability_required(Capability.BOOK_VISIT)
def book_series(request: AuthedHttpRequest, patient_id: int) -> HttpResponse:
    patient = (patient_get_unaudited(request.user, patient_id, _actor(request))
               if request.method == "POST" else
               patient_get_for(request.user, patient_id, _actor(request),
                               read=AuditAction.VISIT_BOOK_FORM))
    site = patient.site
    tz = selectors.site_tz(site)
    orders = selectors.bookable_orders(patient)
    form = BookSeriesForm(request.POST or None, orders=orders, chairs=_chair_codes(site))
    ctx: dict[str, Any] = {"patient": patient, "form": form, "site": site, "rows": None,
                           "orders": orders}
    if request.method == "POST":
        action = request.POST.get("action", "propose")
        if action == "book":
            return _book(request, patient, orders, ctx, tz)
        if form.is_valid():
            order = next(o for o in orders if o.pk == form.cleaned_data["order"])
            first = datetime.combine(form.cleaned_data["first_day"],
                                     form.cleaned_data["start_time"], tz)
            try:
                requests = services.series_requests(
                    order=order, first_start=first, chair=form.cleaned_data["chair"] or None,
                    visits=form.cleaned_data["visits"])
                proposals = services.visits_propose(order=order, requests=requests)
            except UsageError as exc:
                form_error(form, exc, {"first_start": "first_day"})
            else:
                ctx.update(rows=_rows(proposals, tz), order=order,
                           all_ok=all(p.ok for p in proposals))
    return render(request, "scheduling/book.html", ctx)


def _book(request: AuthedHttpRequest, patient: Any, orders: list[Any], ctx: dict[str, Any],
          tz: Any) -> HttpResponse:
    try:
        order = next(o for o in orders if o.pk == int(request.POST.get("order", "0")))
    except (StopIteration, ValueError):
        messages.error(request, "That order has no visits left to book.")
        return redirect("book_series", patient_id=patient.pk)
    try:
        picks, skipped = _parse_picks(request)
        if not picks:
            raise UsageError("visits", "no visit was chosen: pick a slot for at least one")
        visits = services.visits_book(actor=_actor(request, patient.site), order=order,
                                      requests=picks)
    except services.BookingConflict as exc:
        ctx.update(rows=_rows(exc.proposals, tz), order=order, error=str(exc),
                   all_ok=False)
        return render(request, "scheduling/book.html", ctx, status=409)
    except UsageError as exc:
        ctx.update(error=str(exc))
        return render(request, "scheduling/book.html", ctx, status=400)
    note = f" Visits {', '.join(map(str, skipped))} are left to book." if skipped else ""
    messages.success(request, f"{len(visits)} visit(s) booked.{note}")
    return redirect(f"{patient.get_absolute_url()}#visits")


# --------------------------------------------------------------------------- one visit


def _visit(request: AuthedHttpRequest, visit_id: int) -> Visit:
    visit = selectors.visits_visible_to(request.user).filter(pk=visit_id).first()
    if visit is None:
        audit_record(actor=_actor(request), action=AuditAction.VISIT_ACCESS_DENIED,
                     object_type="visit", object_id=visit_id)
        raise Http404("No such visit")
    return visit


def _checklist_initial(visit: Visit) -> dict[str, Any]:
    done = visit.checklist or {}
    initial: dict[str, Any] = {
        "escort_name": done.get("escort_name") or visit.patient.escort_name,
        "escort_phone": done.get("escort_phone") or visit.patient.escort_phone}
    for key, value in done.get("answers", {}).items():
        initial[f"item_{key}"] = "yes" if value else "no"
    return initial


def _visit_page(request: AuthedHttpRequest, visit: Visit, *,
                reschedule: RescheduleForm | None = None,
                cancel: CancelForm | None = None, checklist: ChecklistForm | None = None,
                status: int = 200, rows: list[dict[str, Any]] | None = None) -> HttpResponse:
    tz = selectors.site_tz(visit.site)
    local = timezone.localtime(visit.starts_at, tz)
    chairs = _chair_codes(visit.site)
    return render(request, "scheduling/visit.html", {
        "visit": visit, "events": visit.events.select_related("by"),
        "local_start": local, "local_end": timezone.localtime(visit.ends_at, tz),
        "local_infusion_end": timezone.localtime(visit.infusion_ends_at, tz),
        "reschedule": reschedule or RescheduleForm(chairs=chairs, initial={
            "day": local.date(), "start_time": local.time(), "chair": visit.chair.code}),
        "cancel": cancel or CancelForm(), "rows": rows,
        "given": selectors.infusions_given(visit.series),
        "checklist": checklist or ChecklistForm(initial=_checklist_initial(visit)),
        "checks": selectors.visit_readiness(visit),
    }, status=status)


@capability_required(Capability.VIEW_PATIENTS)
def visit_detail(request: AuthedHttpRequest, visit_id: int) -> HttpResponse:
    visit = _visit(request, visit_id)
    audit_read(actor=_actor(request), action=AuditAction.VISIT_VIEW, object_type="visit",
               object_id=visit.pk, site_code=visit.site.code, patient_id=visit.patient_id)
    return _visit_page(request, visit)


@require_POST
@capability_required(Capability.BOOK_VISIT)
def visit_reschedule(request: AuthedHttpRequest, visit_id: int) -> HttpResponse:
    visit = _visit(request, visit_id)
    tz = selectors.site_tz(visit.site)
    form = RescheduleForm(request.POST, chairs=_chair_codes(visit.site))
    if not form.is_valid():
        return _visit_page(request, visit, reschedule=form, status=400)
    start = datetime.combine(form.cleaned_data["day"], form.cleaned_data["start_time"], tz)
    try:
        services.visit_reschedule(actor=_actor(request, visit.site), visit=visit, start=start,
                                  chair=form.cleaned_data["chair"] or None,
                                  reason=form.cleaned_data["reason"])
    except services.BookingConflict as exc:
        form.add_error(None, str(exc).replace(" Nothing was booked.", " The visit was not moved."))
        return _visit_page(request, visit, reschedule=form, status=409,
                           rows=_rows(exc.proposals, tz))
    except UsageError as exc:
        form_error(form, exc)
        return _visit_page(request, visit, reschedule=form, status=400)
    messages.success(request, f"Visit {visit.number} moved to {start:%a %d %b %H:%M}.")
    return redirect("visit_detail", visit_id=visit.pk)


@require_POST
@capability_required(Capability.BOOK_VISIT)
def visit_cancel(request: AuthedHttpRequest, visit_id: int) -> HttpResponse:
    visit = _visit(request, visit_id)
    form = CancelForm(request.POST)
    if not form.is_valid():
        return _visit_page(request, visit, cancel=form, status=400)
    try:
        services.visit_cancel(actor=_actor(request, visit.site), visit=visit,
                              reason=form.cleaned_data["reason"],
                              note=form.cleaned_data["note"])
    except UsageError as exc:
        form_error(form, exc)
        return _visit_page(request, visit, cancel=form, status=400)
    messages.success(request, f"Visit {visit.number} cancelled.")
    return redirect("visit_detail", visit_id=visit.pk)


@require_POST
@capability_required(Capability.CHART_SESSION)
def visit_start(request: AuthedHttpRequest, visit_id: int) -> HttpResponse:
    visit = _visit(request, visit_id)
    try:
        session = services.visit_start(actor=_actor(request, visit.site), visit=visit)
    except UsageError as exc:
        messages.error(request, refusal_message("The session was not started.", exc))
        return redirect("visit_detail", visit_id=visit.pk)
    return redirect("session_detail", session_id=session.pk)


@require_POST
@capability_required(Capability.ANSWER_CHECKLIST)
def visit_checklist(request: AuthedHttpRequest, visit_id: int) -> HttpResponse:
    visit = _visit(request, visit_id)
    form = ChecklistForm(request.POST)
    if not form.is_valid():
        return _visit_page(request, visit, checklist=form, status=400)
    try:
        services.visit_checklist_record(actor=_actor(request, visit.site), visit=visit,
                                        answers=form.answers(),
                                        escort_name=form.cleaned_data["escort_name"],
                                        escort_phone=form.cleaned_data["escort_phone"])
    except UsageError as exc:
        form_error(form, exc, {k: f"item_{k}" for k in form.answers()})
        return _visit_page(request, visit, checklist=form, status=400)
    messages.success(request, "Pre-visit checklist recorded.")
    return redirect(request.POST.get("next") or visit.get_absolute_url())


# --------------------------------------------------------------------------- the day


@capability_required(Capability.VIEW_PATIENTS)
def census_home(request: AuthedHttpRequest) -> HttpResponse:
    site = selectors.sites_visible_to(request.user).first()
    if site is None:
        raise Http404("You work at no site")
    return redirect("census_today", site=site.code)


@capability_required(Capability.VIEW_PATIENTS)
def census_today(request: AuthedHttpRequest, site: str) -> HttpResponse:
    """Who is coming when, whether each visit is ready, and the chairs now."""
    s = _site(request, site)
    tz = selectors.site_tz(s)
    now = timezone.localtime(timezone.now(), tz)
    day = _day(request.GET.get("day", "today"), s)
    rows = selectors.census(s, day)
    grid = selectors.day_grid(s, day)
    chairs_now = []
    for c in grid.chairs:
        current = next((v for v in c.visits if v.starts_at <= now < v.ends_at), None)
        upcoming = next((v for v in c.visits if v.starts_at > now), None)
        chairs_now.append({"chair": c.chair, "current": current, "next": upcoming,
                           "free": c.free, "visits": c.visits})
    audit_record(actor=_actor(request, s), action=AuditAction.CENSUS_VIEW, object_type="site",
                 object_id=s.pk, detail={"day": day.isoformat(),
                                         "visits": [r.visit.pk for r in rows]})
    return render(request, "scheduling/census.html", {
        "site": s, "day": day, "rows": rows, "chairs_now": chairs_now, "now": now,
        "is_today": day == now.date(), "grid": grid,
        "ready": sum(1 for r in rows if r.ready),
        "free_now": sum(1 for c in chairs_now if c["current"] is None),
        "sites": selectors.sites_visible_to(request.user)})


# --------------------------------------------------------------------------- site setup

_HOURS_FIELD = "hours-{day}"


@capability_required(Capability.MANAGE_SITES)
def site_setup(request: AuthedHttpRequest, site: str) -> HttpResponse:
    s = _site(request, site)
    chair_form = ChairForm(request.POST if request.POST.get("action") == "chair" else None)
    errors: list[str] = []
    if request.method == "POST":
        try:
            _setup_post(request, s, chair_form)
        except UsageError as exc:
            errors.append(str(exc))
        else:
            if not chair_form.errors:
                messages.success(request, "Saved.")
                return redirect("site_setup", site=s.code)
    hours = {d: [] for d in range(7)}  # type: dict[int, list[OpeningHours]]
    for h in OpeningHours.objects.filter(site=s):
        hours[h.weekday].append(h)
    days = [(d, label, ", ".join(f"{h.opens_at:%H:%M}-{h.closes_at:%H:%M}" for h in hours[d]))
            for d, label in OpeningHours.Weekday.choices]
    return render(request, "scheduling/setup.html", {
        "site": s, "chairs": Chair.objects.filter(site=s).order_by("code"),
        "chair_form": chair_form, "days": days, "errors": errors,
        "sites": selectors.sites_visible_to(request.user)})


def _parse_windows(field: str, raw: str) -> list[tuple[time, time]]:
    windows = []
    for part in [p.strip() for p in raw.split(",") if p.strip()]:
        try:
            a, b = (time.fromisoformat(x.strip()) for x in part.split("-"))
        except ValueError as exc:
            raise UsageError(field, f"{part!r} is not opening hours like 08:00-17:00") from exc
        windows.append((a, b))
    return windows


def _setup_post(request: AuthedHttpRequest, site: Site, chair_form: ChairForm) -> None:
    action = request.POST.get("action")
    actor = _actor(request, site)
    if action == "chair":
        if chair_form.is_valid():
            services.chair_add(actor=actor, site=site, **chair_form.cleaned_data)
    elif action == "hours":
        week = {}
        for d, label in OpeningHours.Weekday.choices:
            week[d] = _parse_windows(f"{label} hours",
                                     request.POST.get(_HOURS_FIELD.format(day=d), ""))
        services.opening_hours_set(actor=actor, site=site, week=week)
    elif action in ("retire", "restore"):
        chair_pk = request.POST.get("chair")
        chair = (None if chair_pk is None
                 else Chair.objects.filter(site=site, pk=chair_pk).first())
        if chair is None:
            raise UsageError("chair", "no such chair at this site")
        services.chair_set_active(actor=actor, chair=chair, active=action == "restore")
    elif action == "closure":
        try:
            day = date.fromisoformat(request.POST.get("day", ""))
        except ValueError as exc:
            raise UsageError("closed day", "is not a date") from exc
        services.closure_add(actor=actor, site=site, day=day,
                             reason=request.POST.get("reason", ""))
    else:
        raise PermissionDenied("Unknown action")


# --------------------------------------------------------------------------- patient page


def patient_visits_panel(request: AuthedHttpRequest, patient: Any) -> str:
    """The patient page's visits section (AppConfig.patient_panels)."""
    if not request.user.can(Capability.VIEW_PATIENTS):
        return ""
    visits = list(selectors.patient_visits(patient))
    can_book = request.user.can(Capability.BOOK_VISIT)
    orders = selectors.bookable_orders(patient) if can_book else []
    if not visits and not orders:
        return ""
    tz = selectors.site_tz(patient.site)
    rows = [{"v": v, "start": timezone.localtime(v.starts_at, tz),
             "end": timezone.localtime(v.ends_at, tz)} for v in visits]
    return render_to_string("scheduling/patient_panel.html", {
        "patient": patient, "rows": rows, "can_book": bool(orders)}, request=request)
