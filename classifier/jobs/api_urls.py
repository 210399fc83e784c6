"""The jobs resource's routes under /api/ (included by classifier/api/urls.py, namespace "api")."""

from django.urls import path, re_path

from classifier.jobs import api as jobs

urlpatterns = [
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
]
