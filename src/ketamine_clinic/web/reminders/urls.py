from django.urls import path

from ketamine_clinic.web.reminders import views

urlpatterns = [
    path("patients/<int:patient_id>/contact-consent/", views.contact_consent,
         name="contact_consent"),
    path("reminders/sms/inbound/", views.sms_inbound, name="sms_inbound"),
    path("reminders/stop/<str:token>/", views.email_stop, name="email_stop"),
]
