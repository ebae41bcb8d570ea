from django.urls import path

from ketamine_clinic.web.outcomes import views

urlpatterns = [
    path("follow-ups/", views.followup_worklist, name="followup_worklist"),
    path("follow-ups/<int:follow_up_id>/", views.followup_detail, name="followup_detail"),
    path("follow-ups/<int:follow_up_id>/link/", views.followup_link_create,
         name="followup_link_create"),
    path("series/<int:series_id>/follow-ups/schedule/", views.series_followups_schedule,
         name="series_followups_schedule"),
    path("q/<str:token>/", views.patient_questionnaire, name="patient_questionnaire"),
    path("outcomes/", views.outcome_report, name="outcome_report"),
    path("outcomes/report.csv", views.outcome_report_csv, name="outcome_report_csv"),
    path("outcomes/report.pdf", views.outcome_report_pdf, name="outcome_report_pdf"),
]
