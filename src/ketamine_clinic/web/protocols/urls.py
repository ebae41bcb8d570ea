from django.urls import path

from ketamine_clinic.web.protocols import views

urlpatterns = [
    path("protocols/", views.protocol_list, name="protocol_list"),
    path("protocols/publish/", views.protocol_publish, name="protocol_publish"),
    path("protocols/compare/", views.protocol_compare, name="protocol_compare"),
    path("protocols/references/", views.protocol_references, name="protocol_references"),
    path("protocols/<slug:name>/v<int:version>/", views.protocol_detail,
         name="protocol_detail"),
    path("protocols/<slug:name>/v<int:version>/toml", views.protocol_toml,
         name="protocol_toml"),
    path("patients/<int:patient_id>/screenings/", views.screening_list,
         name="screening_list"),
    path("patients/<int:patient_id>/screenings/new/", views.screening_new,
         name="screening_new"),
    path("screenings/<int:screening_id>/", views.screening_detail, name="screening_detail"),
    path("screenings/<int:screening_id>/override/", views.screening_override,
         name="screening_override"),
]
