"""URLs of the server-rendered pages (namespace "classifier")."""

from django.urls import path, register_converter

from classifier.jobs import views as job_views
from classifier.predictions.media import prediction_original
from classifier.predictions.selectors import MAX_ID
from classifier.web import position_views, views


class PredictionIdConverter:
    """A positive id in ASCII digits, within the database's id range (otherwise a 404)."""

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if not 0 < number <= MAX_ID:
            raise ValueError(value)
        return number

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(PredictionIdConverter, "prediction_id")

app_name = "classifier"

urlpatterns = [
    path("", views.PredictionUploadView.as_view(), name="upload"),
    path("position/", position_views.PositionClassifyView.as_view(), name="position"),
    path("results/", views.PredictionResultsView.as_view(), name="results"),
    path("results.csv", views.PredictionResultsDownloadView.as_view(export_format="csv"), name="results-csv"),
    path(
        "results.json", views.PredictionResultsDownloadView.as_view(export_format="json"), name="results-json"
    ),
    path("predictions/<prediction_id:pk>/", views.PredictionDetailView.as_view(), name="prediction-detail"),
    path(
        "predictions/<prediction_id:pk>/delete/",
        views.PredictionDeleteView.as_view(),
        name="prediction-delete",
    ),
    path("predictions/<prediction_id:pk>/original", prediction_original, name="prediction-original"),
    path(
        "predictions/<prediction_id:pk>/preview.png",
        views.PredictionPreviewView.as_view(),
        name="prediction-preview",
    ),
    path("history/", views.HistoryView.as_view(), name="history"),
    path("history.csv", views.HistoryCsvView.as_view(), name="history-csv"),
    path("classes/", views.ClassesView.as_view(), name="classes"),
    path("model/", views.ModelView.as_view(), name="model"),
    path("jobs/new/", job_views.JobCreateView.as_view(), name="job-new"),
    path("jobs/<int:pk>/", job_views.JobDetailView.as_view(), name="job-detail"),
    path("jobs/<int:pk>/cancel/", job_views.JobCancelView.as_view(), name="job-cancel"),
    path("jobs/<int:pk>/galaxies/", job_views.JobGalleryView.as_view(), name="job-gallery"),
]
