from django.urls import path

from ketamine_clinic.web.orders import views

urlpatterns = [
    path("orders/", views.order_list, name="order_list"),
    path("patients/<int:patient_id>/orders/new/", views.order_new, name="order_new"),
    path("patients/<int:patient_id>/orders/preview/", views.order_preview,
         name="order_preview"),
    path("orders/<int:order_id>/", views.order_detail, name="order_detail"),
    path("orders/<int:order_id>/sign/", views.order_sign, name="order_sign"),
    path("orders/<int:order_id>/verify/", views.order_verify, name="order_verify"),
    path("orders/<int:order_id>/discontinue/", views.order_discontinue,
         name="order_discontinue"),
    path("orders/<int:order_id>/complete/", views.order_complete, name="order_complete"),
    path("orders/<int:order_id>/change/", views.order_change, name="order_change"),
    path("orders/<int:order_id>/sheet.pdf", views.order_pdf, name="order_pdf"),
    path("reports/limit-events/", views.limit_report, name="limit_report"),
]
