from django.urls import path

from ketamine_clinic.web.scheduling import views

urlpatterns = [
    path("calendar/", views.calendar_home, name="calendar_home"),
    path("calendar/<slug:site>/day/<str:day>/", views.calendar_day, name="calendar_day"),
    path("calendar/<slug:site>/week/<str:day>/", views.calendar_week, name="calendar_week"),
    path("calendar/<slug:site>/setup/", views.site_setup, name="site_setup"),
    path("patients/<int:patient_id>/book/", views.book_series, name="book_series"),
    path("visits/<int:visit_id>/", views.visit_detail, name="visit_detail"),
    path("visits/<int:visit_id>/reschedule/", views.visit_reschedule, name="visit_reschedule"),
    path("visits/<int:visit_id>/cancel/", views.visit_cancel, name="visit_cancel"),
    path("visits/<int:visit_id>/start/", views.visit_start, name="visit_start"),
    path("visits/<int:visit_id>/checklist/", views.visit_checklist, name="visit_checklist"),
    path("today/", views.census_home, name="census_home"),
    path("today/<slug:site>/", views.census_today, name="census_today"),
]
