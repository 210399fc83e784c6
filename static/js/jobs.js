/* A job's page: follows its progress through the API until it ends, then reloads the
 * page, which shows the class counts and the download buttons. Without this script the
 * page still shows the progress when it was loaded. */
(function () {
  "use strict";

  var section = document.getElementById("job");
  if (!section || !window.fetch) {
    return;
  }
  var url = section.dataset.statusUrl;
  var bar = document.getElementById("job-progress");
  var text = document.getElementById("job-progress-text");
  var statusLabel = document.getElementById("job-status");
  var active = { queued: true, running: true };
  var delay = 1000;

  function show(job) {
    bar.max = job.total;
    bar.value = job.done + job.failed;
    bar.textContent = bar.value + "/" + job.total;
    var line = job.done + " / " + job.total;
    if (job.failed) {
      line += " (" + job.failed + " \u2717)";
    }
    if (job.rate) {
      line += " \u00b7 " + job.rate + "/s";
    }
    text.textContent = line;
    statusLabel.textContent = job.status;
  }

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error(response.status);
        }
        return response.json();
      })
      .then(function (job) {
        show(job);
        if (active[job.status]) {
          window.setTimeout(poll, delay);
        } else {
          window.location.reload();
        }
      })
      .catch(function () {
        // The server may be restarting: keep trying, less often.
        delay = Math.min(delay * 2, 30000);
        window.setTimeout(poll, delay);
      });
  }

  window.setTimeout(poll, delay);
})();
