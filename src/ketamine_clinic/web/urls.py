from django.urls import include, path

from ketamine_clinic.web.accounts import token_views
from ketamine_clinic.web.accounts import views as accounts
from ketamine_clinic.web.api import api
from ketamine_clinic.web.audit import views as audit
from ketamine_clinic.web.lib.areas import area_modules
from ketamine_clinic.web.lib.vendor import plotly_name
from ketamine_clinic.web.patients import views as patients

urlpatterns = [
    path("", accounts.home, name="home"),
    path("healthz", accounts.healthz, name="healthz"),
    path(f"vendor/{plotly_name()}", accounts.plotly_js, name="plotly_js"),
    path("login/", accounts.LoginView.as_view(), name="login"),
    path("logout/", accounts.LogoutView.as_view(), name="logout"),
    path("patients/", patients.patient_list, name="patient_list"),
    path("patients/new/", patients.patient_create, name="patient_create"),
    path("patients/<int:patient_id>/", patients.patient_detail, name="patient_detail"),
    path("patients/<int:patient_id>/amend/", patients.patient_amend, name="patient_amend"),
    path("patients/<int:patient_id>/measurements/", patients.measurement_add,
         name="measurement_add"),
    path("patients/<int:patient_id>/diagnoses/", patients.diagnosis_add, name="diagnosis_add"),
    path("patients/<int:patient_id>/allergies/", patients.allergy_add, name="allergy_add"),
    path("patients/<int:patient_id>/medications/", patients.medication_add,
         name="medication_add"),
    path("patients/<int:patient_id>/<str:kind>/<int:record_id>/in-error/",
         patients.record_in_error, name="record_in_error"),
    path("audit/", audit.audit_list, name="audit_list"),
    path("account/tokens/", token_views.token_list, name="token_list"),
    path("account/tokens/<int:token_id>/revoke/", token_views.token_revoke_view,
         name="token_revoke"),
    path("api/v1/", api.urls),
]

# Every other product area brings its own urls.py (see lib/areas.py).
urlpatterns += [path("", include(module)) for module in area_modules("urls")]
