from django.urls import path

from ketamine_clinic.web.documents import views

urlpatterns = [
    path("education/", views.education_index, name="education_index"),
    path("education/sources/", views.education_sources, name="education_sources"),
    path("education/print/", views.education_print, name="education_print"),
    path("education/<slug:slug>/", views.education_page, name="education_page"),
    path("patients/<int:patient_id>/consents/new/", views.consent_new, name="consent_new"),
    path("patients/<int:patient_id>/consents/print/<int:protocol_version_id>/",
         views.consent_print, name="consent_print"),
    path("consents/<int:consent_id>/", views.consent_detail, name="consent_detail"),
    path("consents/<int:consent_id>/withdraw/", views.consent_withdraw,
         name="consent_withdraw"),
    path("sessions/<int:session_id>/instructions/", views.session_instructions,
         name="session_instructions"),
    path("sessions/<int:session_id>/instructions.pdf", views.session_instructions_pdf,
         name="session_instructions_pdf"),
]
