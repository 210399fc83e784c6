from django.urls import include, path, re_path

from classifier.api import health, model, predictions, root

app_name = "api"

urlpatterns = [
    path("", root.ApiRootApi.as_view(), name="root"),
    path("predictions/", predictions.PredictionListCreateApi.as_view(), name="prediction-list"),
    path(
        "predictions/bulk-delete/",
        predictions.PredictionBulkDeleteApi.as_view(),
        name="prediction-bulk-delete",
    ),
    # Any integer, negative too, reaches the view: an id that does not exist is a JSON 404.
    re_path(
        r"^predictions/(?P<pk>-?[0-9]+)/$",
        predictions.PredictionDetailApi.as_view(),
        name="prediction-detail",
    ),
    path("model/", model.ModelInfoApi.as_view(), name="model"),
    # The jobs resource lives with the jobs feature, which builds on this package's serializers
    # and error handler; named here by its path, its routes join this namespace.
    path("", include("classifier.jobs.api_urls")),
    re_path(r"^health/live/?$", health.HealthLiveApi.as_view(), name="health-live"),
    re_path(r"^health/ready/?$", health.HealthReadyApi.as_view(), name="health-ready"),
]
