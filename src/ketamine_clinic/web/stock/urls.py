from django.urls import path

from ketamine_clinic.web.stock import views

urlpatterns = [
    path("stock/", views.stock_home, name="stock_home"),
    path("stock/receive/", views.stock_receive, name="stock_receive"),
    path("stock/count/", views.stock_count, name="stock_count"),
    path("stock/vials/<int:container_id>/", views.stock_container, name="stock_container"),
    path("stock/sessions/<int:session_id>/", views.stock_session, name="stock_session"),
    path("stock/discrepancies/<int:discrepancy_id>/", views.stock_discrepancy,
         name="stock_discrepancy"),
    path("stock/loss/<int:case_id>/", views.stock_loss_case, name="stock_loss_case"),
    path("stock/inventories/<int:inventory_id>/", views.stock_inventory,
         name="stock_inventory"),
    path("stock/reports/", views.stock_reports, name="stock_reports"),
    path("stock/settings/", views.stock_settings, name="stock_settings"),
]
