from django.contrib import admin
from django.urls import path

admin.site.site_header = "Release registry"
admin.site.site_title = "Release registry"

urlpatterns = [
    path("admin/", admin.site.urls),
]
