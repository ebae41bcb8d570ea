from django.urls import path

from ketamine_clinic.web.staff import views

urlpatterns = [
    path("staff/", views.staff_list, name="staff_list"),
    path("staff/new/", views.staff_create, name="staff_create"),
    path("staff/devices/new/", views.device_create, name="device_create"),
    path("staff/<int:user_id>/", views.staff_detail, name="staff_detail"),
    path("staff/<int:user_id>/tokens/<int:token_id>/revoke/", views.token_revoke,
         name="token_revoke"),
    path("staff/<int:user_id>/<slug:action>/", views.staff_action, name="staff_action"),
    path("account/password/", views.password_change, name="password_change"),
]
