from django.urls import path, re_path

from classifier.api import health, model, predictions, root
from classifier.jobs import api as jobs

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
    path("jobs/", jobs.JobListCreateApi.as_view(), name="job-list"),
    re_path(r"^jobs/(?P<pk>-?[0-9]+)/$", jobs.JobDetailApi.as_view(), name="job-detail"),
    re_path(r"^jobs/(?P<pk>-?[0-9]+)/cancel/$", jobs.JobCancelApi.as_view(), name="job-cancel"),
    re_path(r"^jobs/(?P<pk>-?[0-9]+)/results\.csv$", jobs.JobResultsCsvApi.as_view(), name="job-results-csv"),
    re_path(
        r"^jobs/(?P<pk>-?[0-9]+)/results\.json$", jobs.JobResultsJsonApi.as_view(), name="job-results-json"
    ),
    re_path(
        r"^jobs/(?P<pk>-?[0-9]+)/results\.vot$",
        jobs.JobResultsVotableApi.as_view(),
        name="job-results-votable",
    ),
    re_path(r"^health/live/?$", health.HealthLiveApi.as_view(), name="health-live"),
    re_path(r"^health/ready/?$", health.HealthReadyApi.as_view(), name="health-ready"),
]
