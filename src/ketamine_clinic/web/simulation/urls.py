from django.urls import path

from ketamine_clinic.web.simulation import views

urlpatterns = [
    path("simulator/", views.simulator, name="simulator"),
    path("simulator/predictions/<int:prediction_id>/what-if/", views.what_if,
         name="simulation_what_if"),
]
