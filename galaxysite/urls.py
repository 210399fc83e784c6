"""Top-level URLs: pages, the REST API with its schema, the admin, login and the language switch."""

from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from classifier.ops.metrics import metrics_view
from classifier.predictions.media import protected_media
from classifier.web import accounts

urlpatterns = [
    path("admin/", admin.site.urls),
    path("metrics", metrics_view, name="metrics"),
    # Django's own account pages, with reset and change throttled and reset only where mail
    # is configured (classifier/web/accounts.py); these come first, so they answer for those paths.
    path("accounts/password_change/", accounts.password_change, name="password_change"),
    path("accounts/password_reset/", accounts.password_reset, name="password_reset"),
    path("accounts/password_reset/done/", accounts.password_reset_done, name="password_reset_done"),
    path("accounts/reset/<uidb64>/<token>/", accounts.password_reset_confirm, name="password_reset_confirm"),
    path("accounts/reset/done/", accounts.password_reset_complete, name="password_reset_complete"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file: the CSP allows no inline
    # script. Swagger UI draws some icons as data: images, allowed on this page only.
    path(
        "api/docs/",
        csp_update({"img-src": ["data:"]})(SpectacularSwaggerSplitView.as_view(url_name="schema")),
        name="swagger-ui",
    ),
    path("api/", include("classifier.api.urls", namespace="api")),
    re_path(r"^media/(?P<path>.+)$", protected_media, name="media"),
    path("", include("classifier.urls", namespace="classifier")),
]

# Styled pages in the reader's language, and JSON under /api/ (classifier/web/error_views.py).
handler400 = "classifier.web.error_views.bad_request"
handler403 = "classifier.web.error_views.permission_denied"
handler404 = "classifier.web.error_views.page_not_found"
handler500 = "classifier.web.error_views.server_error"
