from django.urls import path

from ketamine_clinic.web.sessions import views

urlpatterns = [
    path("sessions/board/", views.session_board, name="session_board"),
    path("sessions/<int:session_id>/", views.session_detail, name="session_detail"),
    path("sessions/<int:session_id>/live/", views.session_live, name="session_live"),
    path("sessions/<int:session_id>/observe/<str:kind>/", views.session_observe,
         name="session_observe"),
    path("sessions/<int:session_id>/rate/", views.session_rate, name="session_rate"),
    path("sessions/<int:session_id>/event/<str:event>/", views.session_event,
         name="session_event"),
    path("sessions/<int:session_id>/entries/<int:entry_id>/correct/", views.session_correct,
         name="session_correct"),
    path("sessions/<int:session_id>/alarms/<int:alarm_id>/ack/", views.alarm_ack,
         name="session_alarm_ack"),
    path("sessions/<int:session_id>/recovery/", views.session_recovery,
         name="session_recovery"),
    path("sessions/<int:session_id>/discharge/", views.session_discharge,
         name="session_discharge"),
    path("sessions/<int:session_id>/discharge/check/", views.session_discharge_check,
         name="session_discharge_check"),
]
