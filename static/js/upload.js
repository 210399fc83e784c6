/* Upload page enhancements: drag and drop, previews, progress, per-file errors.
 * Without this script the form is a plain multipart POST and still works. */
(function () {
  "use strict";

  var form = document.getElementById("upload-form");
  if (!form || !window.FormData || !window.XMLHttpRequest) {
    return;
  }
  var input = form.querySelector("input[type=file]");
  var dropzone = document.getElementById("dropzone");
  var list = document.getElementById("file-list");
  var template = document.getElementById("file-item-template");
  var progress = document.getElementById("upload-progress");
  var progressBar = document.getElementById("upload-progress-bar");
  var progressText = document.getElementById("upload-progress-text");
  var submit = document.getElementById("upload-submit");
  var clear = document.getElementById("upload-clear");
  var messages = JSON.parse(document.getElementById("upload-messages").textContent);
  // The server refuses larger files anyway; checking here saves sending them.
  var maxUploadBytes = parseInt(form.dataset.maxUploadBytes, 10) || Infinity;
  var chosen = [];
  var busy = false;

  function format(text, values) {
    return text.replace(/\{(\w+)\}/g, function (match, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? values[key] : match;
    });
  }

  function humanSize(bytes) {
    if (bytes < 1024) return bytes + " B";
    if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(1) + " KB";
    return (bytes / 1024 / 1024).toFixed(1) + " MB";
  }

  // Types a browser can draw in an <img>; FITS, TIFF and anything else get a placeholder.
  var PREVIEWABLE = /^image\/(jpeg|png|gif|webp|bmp|avif)$/;

  function placeholder(file) {
    var dot = file.name.lastIndexOf(".");
    var span = document.createElement("span");
    span.className = "file-placeholder";
    span.setAttribute("aria-hidden", "true");  // the file's name is shown beside it
    span.textContent = dot > 0 ? file.name.slice(dot + 1, dot + 6).toUpperCase() : "?";
    return span;
  }

  function sameFile(a, b) {
    return a.name === b.name && a.size === b.size && a.lastModified === b.lastModified;
  }

  // Keep the real <input> in step with the list, so a non-XHR submit sends the same files.
  function syncInput() {
    if (typeof DataTransfer === "undefined") return;
    try {
      var transfer = new DataTransfer();
      chosen.forEach(function (entry) { transfer.items.add(entry.file); });
      input.files = transfer.files;
    } catch (err) {
      /* Old browsers cannot assign FileList; the XHR path does not need it. */
    }
  }

  function serverErrorBox() {
    return document.getElementById("upload-errors");
  }

  function clearServerErrors() {
    var box = serverErrorBox();
    if (box) box.remove();
    var fileErrors = form.querySelector(".file-errors");
    if (fileErrors) fileErrors.remove();
  }

  function showRequestErrors(errors) {
    clearServerErrors();
    if (!errors.length) return;
    var box = document.createElement("div");
    box.className = "alert alert-error";
    box.id = "upload-errors";
    box.setAttribute("role", "alert");
    box.tabIndex = -1;
    errors.forEach(function (message) {
      var p = document.createElement("p");
      p.textContent = message;
      box.appendChild(p);
    });
    form.insertBefore(box, dropzone);
    box.focus();
  }

  function sizeError(file) {
    if (file.size <= maxUploadBytes) return "";
    return format(messages.fileTooLarge, { size: humanSize(file.size), limit: messages.uploadLimit });
  }

  function render() {
    list.textContent = "";
    chosen.forEach(function (entry, index) {
      var item = template.content.firstElementChild.cloneNode(true);
      var img = item.querySelector("img");
      if (entry.url && !entry.broken) {
        img.alt = format(messages.preview, { name: entry.file.name });
        // A file that claims an image type but does not decode is shown like any other non-image.
        img.addEventListener("error", function () {
          entry.broken = true;
          if (img.parentNode) img.replaceWith(placeholder(entry.file));
        });
        img.src = entry.url;
      } else {
        img.replaceWith(placeholder(entry.file));
      }
      item.querySelector(".file-name").textContent = entry.file.name;
      item.querySelector(".file-size").textContent = humanSize(entry.file.size);
      var error = item.querySelector(".file-error");
      if (entry.error) {
        item.classList.add("has-error");
        error.textContent = entry.error;
      } else {
        error.remove();
      }
      var remove = item.querySelector(".remove-file");
      remove.setAttribute("aria-label", format(messages.removeLabel, { name: entry.file.name }));
      remove.disabled = busy;
      remove.addEventListener("click", function () {
        if (entry.url) URL.revokeObjectURL(entry.url);
        chosen.splice(index, 1);
        syncInput();
        render();
        (list.querySelector(".remove-file") || input).focus();
      });
      item.dataset.filename = entry.file.name;
      list.appendChild(item);
    });
    clear.hidden = chosen.length === 0;
    var chosenLabel = chosen.length === 1 ? messages.chosenOne : messages.chosen;
    list.setAttribute("aria-label", format(chosenLabel, { count: chosen.length }));
  }

  function addFiles(fileList) {
    Array.prototype.forEach.call(fileList, function (file) {
      var duplicate = chosen.some(function (entry) { return sameFile(entry.file, file); });
      if (!duplicate) {
        var url = PREVIEWABLE.test(file.type) ? URL.createObjectURL(file) : "";
        chosen.push({ file: file, url: url, error: "", broken: false });
      }
    });
    chosen.forEach(function (entry) { entry.error = sizeError(entry.file); });
    clearServerErrors();
    syncInput();
    render();
  }

  input.addEventListener("change", function () {
    // The picker's selection is taken over by the list; copy it before syncInput() replaces it.
    var picked = Array.prototype.slice.call(input.files);
    addFiles(picked);
  });

  ["dragenter", "dragover"].forEach(function (type) {
    dropzone.addEventListener(type, function (event) {
      event.preventDefault();
      dropzone.classList.add("is-dragover");
    });
  });
  ["dragleave", "dragend", "drop"].forEach(function (type) {
    dropzone.addEventListener(type, function () { dropzone.classList.remove("is-dragover"); });
  });
  dropzone.addEventListener("drop", function (event) {
    event.preventDefault();
    if (event.dataTransfer && event.dataTransfer.files.length) {
      addFiles(event.dataTransfer.files);
    }
  });
  // A file dropped next to the zone must not make the browser navigate away to it.
  window.addEventListener("dragover", function (event) { event.preventDefault(); });
  window.addEventListener("drop", function (event) { event.preventDefault(); });

  clear.addEventListener("click", function () {
    chosen.forEach(function (entry) { if (entry.url) URL.revokeObjectURL(entry.url); });
    chosen = [];
    clearServerErrors();
    syncInput();
    render();
    input.focus();
  });

  function setBusy(value) {
    busy = value;
    submit.disabled = value;
    clear.disabled = value;
    input.disabled = value;
    form.setAttribute("aria-busy", value ? "true" : "false");
    list.querySelectorAll(".remove-file").forEach(function (button) { button.disabled = value; });
  }

  function showProgress(percent, text) {
    progress.hidden = false;
    if (percent === null) {
      progressBar.removeAttribute("value");
    } else {
      progressBar.value = percent;
      progressBar.textContent = percent + "%";
    }
    progressText.textContent = "";
    if (text) {
      var spinner = document.createElement("span");
      spinner.className = "spinner";
      spinner.setAttribute("aria-hidden", "true");
      progressText.appendChild(spinner);
      progressText.appendChild(document.createTextNode(" " + text));
    }
  }

  function attachFileErrors(errors) {
    var unmatched = [];
    chosen.forEach(function (entry) { entry.error = ""; });
    errors.forEach(function (error) {
      var target = chosen.find(function (entry) { return !entry.error && entry.file.name === error.filename; });
      if (target) {
        target.error = error.error;
      } else {
        unmatched.push(error.filename + ": " + error.error);
      }
    });
    render();
    return unmatched;
  }

  function handleResponse(xhr) {
    var data = null;
    try {
      data = JSON.parse(xhr.responseText);
    } catch (err) {
      data = null;
    }
    if (xhr.status >= 200 && xhr.status < 300 && data && data.redirect) {
      window.location.assign(data.redirect);
      return;
    }
    setBusy(false);
    progress.hidden = true;
    if (xhr.status === 413 && !data) {
      // A proxy in front of the app may answer 413 with its own page instead of JSON.
      showRequestErrors([messages.requestTooLarge]);
      return;
    }
    if (!data) {
      showRequestErrors([messages.failed]);
      return;
    }
    var fileErrors = data.errors || [];
    var requestErrors = (data.request_errors || []).slice();
    var unmatched = attachFileErrors(fileErrors);
    if (fileErrors.length) requestErrors.unshift(messages.nothingSaved);
    showRequestErrors(requestErrors.concat(unmatched));
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (busy) return;
    if (!chosen.length) {
      showRequestErrors([messages.chooseFirst]);
      return;
    }
    var tooLarge = chosen.filter(function (entry) { return sizeError(entry.file); });
    if (tooLarge.length) {
      chosen.forEach(function (entry) { entry.error = sizeError(entry.file); });
      render();
      showRequestErrors([messages.removeTooLarge]);
      return;
    }
    var data = new FormData();
    data.append("csrfmiddlewaretoken", form.querySelector("input[name=csrfmiddlewaretoken]").value);
    chosen.forEach(function (entry) { data.append(input.name, entry.file, entry.file.name); });

    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) {
        var percent = Math.round((e.loaded / e.total) * 100);
        showProgress(percent, format(messages.sending, { percent: percent }));
      }
    });
    xhr.upload.addEventListener("load", function () {
      showProgress(null, messages.classifying);
    });
    xhr.addEventListener("load", function () { handleResponse(xhr); });
    xhr.addEventListener("error", function () {
      setBusy(false);
      progress.hidden = true;
      showRequestErrors([messages.failed]);
    });
    clearServerErrors();
    setBusy(true);
    showProgress(0, format(messages.sending, { percent: 0 }));
    xhr.send(data);
  });

  if (input.files && input.files.length) {
    addFiles(Array.prototype.slice.call(input.files));
  }
})();
