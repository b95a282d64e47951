from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from leadchat import views

admin.site.site_header = "leadchat QA console"
admin.site.site_title = "leadchat QA console"
admin.site.index_title = "Review AI conversations"

urlpatterns = [
    path("", views.root, name="root"),
    path("health", views.health, name="health"),
    path("accounts/", include("accounts.urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
