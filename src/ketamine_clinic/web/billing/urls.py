from django.urls import path

from ketamine_clinic.web.billing import views

urlpatterns = [
    path("sessions/<int:session_id>/billing/", views.billing_page, name="billing_summary"),
    path("sessions/<int:session_id>/billing.csv", views.billing_csv, name="billing_csv"),
]
