from django.urls import path, re_path

from ketamine_clinic.web.fhir import views

TYPE = r"(?P<resource_type>[A-Z][A-Za-z]+)"
ID = r"(?P<rid>[A-Za-z0-9\-\.]{1,64})"

urlpatterns = [
    path("fhir/metadata", views.metadata, name="fhir_metadata"),
    path("fhir/Patient/$export", views.patient_export, name="fhir_patient_export"),
    path("fhir/Group/<str:group_id>/$export", views.group_export, name="fhir_group_export"),
    path("fhir/_export/<str:job_id>", views.export_status, name="fhir_export_status"),
    path("fhir/_export/<str:job_id>/<str:name>", views.export_file, name="fhir_export_file"),
    re_path(rf"^fhir/{TYPE}$", views.search_type, name="fhir_search"),
    re_path(rf"^fhir/{TYPE}/{ID}$", views.read, name="fhir_read"),
    re_path(r"^fhir/(?P<rest>.*)$", views.not_found, name="fhir_not_found"),
]
