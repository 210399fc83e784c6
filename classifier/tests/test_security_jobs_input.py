"""Attacks on a job's input (issue 21, items 5, 9, 13 and 15), each with a crafted file.

- A zip whose central directory lists millions of entries, or lies about how many it lists,
  and a catalogue CSV with more rows than a job may have files: refused (413) before any
  list of them is built, in a few MB.
- Encrypted, AES, Deflate64 or unknown-method members refuse the archive (400); corrupt
  LZMA, bzip2 or Deflate data fails that member alone, and the job still ends.
- Bidi overrides and zero-width characters are cleaned out of member paths.
- ``submit_job DIR`` skips symbolic links instead of staging their targets.
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from classifier.core.exceptions import JobInputError
from classifier.core.inference import GalaxyClassifier
from classifier.jobs import catalogues, zip_directory
from classifier.jobs import services as job_services
from classifier.jobs.members import MemberInput
from classifier.jobs.submissions import submission_from_paths, submission_from_uploads
from classifier.models import Job, JobMember, Prediction
from classifier.tests.jobs_support import (
    distinct_images,
    make_zip,
    run_chunks_inline,
    submit_archive,
    wait_until_ended,
    zip_upload,
)
from classifier.tests.utils import media_files
from classifier.tests.workers import Worker

pytestmark = pytest.mark.django_db

URL = reverse("api:job-list")
# Within the limits a test sets, the peak Python allocation of refusing a bomb: the tail
# read (64 KiB) and two 1 MiB blocks of the directory. Building the list costs 10-100x.
REFUSAL_PEAK_BYTES = 4 * 1024 * 1024
_RECORD = struct.Struct("<4s4B4HL2L5H2L")


def _post(client, **files):
    return client.post(URL, files, format="multipart")


def _nothing_saved(media_root: Path) -> None:
    assert Job.objects.count() == 0
    assert JobMember.objects.count() == 0
    assert media_files(media_root) == []


def crafted_directory(count: int, *, declared: int | None = None) -> bytes:
    """A zip whose central directory lists ``count`` entries (47 bytes each, written with
    struct), all pointing at one empty stored file; its end records declare ``declared``
    entries (default: count), in a ZIP64 end record when that is over 65,535."""
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0, 0, 0, 0, 1, 0) + b"a"
    directory = b"".join(
        _RECORD.pack(b"PK\x01\x02", 20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0)
        + bytes([97 + index % 26])
        for index in range(count)
    )
    declared = count if declared is None else declared
    offset, size = len(local), len(directory)
    if declared > 0xFFFF:
        zip64 = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, declared, declared, size, offset)
        locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, offset + size, 1)
        end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
        return local + directory + zip64 + locator + end
    return (
        local + directory + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, declared, declared, size, offset, 0)
    )


def _peak_allocation(call) -> tuple[object, int]:
    """What call returned (or the JobInputError it raised), and its peak Python allocation."""
    tracemalloc.start()
    try:
        try:
            outcome = call()
        except JobInputError as exc:
            outcome = exc
        return outcome, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def with_method(archive: bytes, name: str, *, method: int | None = None, flags: int = 0) -> bytes:
    """The archive with one member's compression method and flag bits changed in both its
    local header and its central directory record, as another zip tool would write them."""
    data = bytearray(archive)
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        info = zf.getinfo(name)
        start = zf.start_dir
    records = []
    at = start
    while data[at : at + 4] == b"PK\x01\x02":
        records.append(at)
        fields = _RECORD.unpack_from(data, at)
        at += _RECORD.size + fields[12] + fields[13] + fields[14]
    [record] = [at for at in records if data[at + 46 : at + 46 + len(name)] == name.encode()]
    for flag_at, method_at in ((info.header_offset + 6, info.header_offset + 8), (record + 8, record + 10)):
        struct.pack_into("<H", data, flag_at, struct.unpack_from("<H", data, flag_at)[0] | flags)
        if method is not None:
            struct.pack_into("<H", data, method_at, method)
    return bytes(data)


def corrupted(archive: bytes, name: str, *, at: int = 30, junk: bytes = b"\0" * 40) -> bytes:
    """The archive with bytes inside one member's compressed data overwritten."""
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        info = zf.getinfo(name)
    data_start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    damaged = bytearray(archive)
    damaged[data_start + at : data_start + at + len(junk)] = junk
    return bytes(damaged)


def compressed_zip(entries: list[tuple[str, bytes, int]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data, method in entries:
            zf.writestr(name, data, compress_type=method)
    return buffer.getvalue()


# Item 5: the central directory -----------------------------------------------------------


@pytest.mark.parametrize(
    "declared",
    [
        pytest.param(5_000_000, id="claiming-five-million"),
        # The end record says 3; zipfile would read all 150,000 records anyway.
        pytest.param(3, id="understating"),
    ],
)
def test_zip_with_150000_entries_is_413_before_its_list_is_built(settings, user_client, media_root, declared):
    # Refused at the bound whether the end record overstates or understates its entries.
    settings.JOB_MAX_MEMBERS = 20_000
    archive = crafted_directory(150_000, declared=declared)
    outcome, peak = _peak_allocation(lambda: submission_from_uploads(archive=zip_upload(archive)))
    assert isinstance(outcome, JobInputError)
    assert outcome.too_large
    assert "more than 50,000 entries" in outcome.reason
    assert peak < REFUSAL_PEAK_BYTES, peak
    response = _post(user_client, archive=zip_upload(archive))
    assert response.status_code == 413
    _nothing_saved(media_root)


def test_zip_whose_central_directory_is_too_large_is_413(settings, user_client, media_root):
    # Few entries, each with a 30 kB comment: zipfile would hold every byte of them.
    settings.JOB_MAX_MEMBERS = 100
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for index, data in enumerate(distinct_images(3)):
            info = zipfile.ZipInfo(f"g{index}.png")
            info.comment = b"x" * 30_000
            zf.writestr(info, data)
    response = _post(user_client, archive=zip_upload(buffer.getvalue()))
    assert response.status_code == 413
    assert "file list is" in response.json()["reason"]
    _nothing_saved(media_root)


def test_archive_at_the_limits_with_folders_and_macos_copies_is_accepted(settings, user_client, monkeypatch):
    # As macOS zips a folder: each file and its __MACOSX copy, and the folders of both.
    settings.JOB_MAX_MEMBERS = 4
    images = distinct_images(4)
    entries = [
        ("north/", b""),
        ("south/", b""),
        ("__MACOSX/", b""),
        ("__MACOSX/north/", b""),
        ("__MACOSX/south/", b""),
    ]
    for index, data in enumerate(images):
        folder = "north" if index % 2 else "south"
        entries += [(f"{folder}/g{index}.png", data), (f"__MACOSX/{folder}/._g{index}.png", b"\0" * 80)]
    archive = make_zip(entries)
    monkeypatch.setattr(zip_directory, "FOLDER_ENTRIES", 5)
    response = _post(user_client, archive=zip_upload(archive))
    assert response.status_code == 202, response.content
    assert response.json()["total"] == 4
    monkeypatch.setattr(zip_directory, "FOLDER_ENTRIES", 4)
    response = _post(user_client, archive=zip_upload(archive))
    assert response.status_code == 413
    assert "more than 12 entries" in response.json()["reason"]


def test_archive_with_more_files_than_a_job_may_have_is_413(settings, user_client, media_root):
    settings.JOB_MAX_MEMBERS = 3
    archive = make_zip([(f"g{index}.png", data) for index, data in enumerate(distinct_images(4))])
    response = _post(user_client, archive=zip_upload(archive))
    assert response.status_code == 413
    assert "more than 3 files" in response.json()["reason"]
    _nothing_saved(media_root)


def _self_extracting(archive: bytes) -> bytes:
    # A program in front of the archive: zipfile finds the directory from the end records.
    return b"MZ" + b"\0" * 5000 + archive


def _commented(archive: bytes) -> bytes:
    buffer = io.BytesIO(archive)
    with zipfile.ZipFile(buffer, "a") as zf:
        zf.comment = b"an archive comment, as zip -z writes it " * 100
    return buffer.getvalue()


@pytest.mark.parametrize(
    "archive",
    [
        make_zip([("a.png", b"a"), ("b/c.png", b"c")]),
        _commented(make_zip([("a.png", b"a")])),
        _self_extracting(make_zip([("a.png", b"a"), ("b.png", b"b")])),
        crafted_directory(70_000),
        _self_extracting(crafted_directory(70_000)),
    ],
    ids=["plain", "commented", "self-extracting", "zip64", "zip64-self-extracting"],
)
def test_the_directory_checked_is_the_one_zipfile_reads(archive):
    stream = io.BytesIO(archive)
    declared, size, start = zip_directory.central_directory(stream)
    counted = zip_directory.count_records(stream, start=start, size=size, limit=10**6)
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        assert start == zf.start_dir
        assert declared == counted == len(zf.infolist())


# Item 5: the catalogue ------------------------------------------------------------------


def test_catalogue_with_more_rows_than_a_job_has_files_is_413_while_streaming(
    settings, user_client, media_root
):
    settings.JOB_MAX_MEMBERS = 1_000
    rows = "".join(f"g{index}.png,{index},10.5,-3.25\n" for index in range(200_000))
    csv_bytes = ("file,id,ra,dec\n" + rows).encode()
    image = SimpleUploadedFile("g0.png", distinct_images(1)[0])
    catalogue = SimpleUploadedFile("catalogue.csv", csv_bytes)
    outcome, peak = _peak_allocation(lambda: submission_from_uploads(images=[image], catalogue=catalogue))
    assert isinstance(outcome, JobInputError)
    assert outcome.too_large
    assert "more than 1,000 rows" in outcome.reason
    # The whole file is 5 MB; read whole and split into rows it cost several times that.
    assert peak < len(csv_bytes) // 4, peak
    response = _post(
        user_client,
        image=[SimpleUploadedFile("g0.png", distinct_images(1)[0])],
        catalogue=SimpleUploadedFile("catalogue.csv", csv_bytes),
    )
    assert response.status_code == 413
    _nothing_saved(media_root)


def test_catalogue_over_the_byte_limit_stops_reading_there(tmp_path, monkeypatch):
    # submit_job reads the CSV from disk, with no size known in advance.
    monkeypatch.setattr(catalogues, "MAX_CATALOGUE_BYTES", 10_000)
    (tmp_path / "g.png").write_bytes(distinct_images(1)[0])
    catalogue = tmp_path / "catalogue.csv"
    catalogue.write_text("file,id\n" + "g.png,G1\n" * 5_000)
    with pytest.raises(CommandError, match="larger than 10,000 bytes"):
        call_command("submit_job", str(tmp_path / "g.png"), str(catalogue))
    assert Job.objects.count() == 0


def test_catalogue_rows_stay_matched_and_intact(user_client, django_capture_on_commit_callbacks):
    images = distinct_images(2)
    # A BOM, CRLF, a quoted comma, a blank and a surplus column, a short row, a row outside
    # the submission, and a NUL (which PostgreSQL's JSON refuses).
    catalogue = (
        "\ufefffile,id,note,,extra\r\n"
        './a.png,G1,"two, words",ignored,x,surplus\r\n'
        "b.png,G2,nul\0inside\r\n"
        "../a.png,EVIL,,,\r\n"
    ).encode()
    response = _post(
        user_client,
        image=[SimpleUploadedFile("a.png", images[0]), SimpleUploadedFile("b.png", images[1])],
        catalogue=SimpleUploadedFile("catalogue.csv", catalogue),
    )
    assert response.status_code == 202, response.content
    job = Job.objects.get()
    assert job.catalogue_columns == ["id", "note", "extra"]
    assert dict(job.members.values_list("path", "catalogue")) == {
        "a.png": {"id": "G1", "note": "two, words", "extra": "x"},
        "b.png": {"id": "G2", "note": "nulinside", "extra": ""},
    }


# Item 9: members that cannot be read ----------------------------------------------------


@pytest.mark.parametrize(
    ("method", "flags", "reason"),
    [
        (None, 0x1, "is encrypted"),
        (99, 0x1, "is encrypted"),  # WinZip AES: method 99 and the encryption flag
        (99, 0, "compressed with AES"),
        (9, 0, "compressed with Deflate64"),
        (77, 0, "compressed with method 77"),
    ],
    ids=["zipcrypto", "aes", "aes-without-flag", "deflate64", "unknown"],
)
def test_members_zipfile_cannot_read_refuse_the_archive(user_client, media_root, method, flags, reason):
    images = distinct_images(2)
    archive = make_zip([("good.png", images[0]), ("locked.png", images[1])])
    response = _post(
        user_client, archive=zip_upload(with_method(archive, "locked.png", method=method, flags=flags))
    )
    assert response.status_code == 400, response.content
    assert reason in response.json()["reason"]
    assert "locked.png" in response.json()["reason"]
    _nothing_saved(media_root)


@pytest.mark.skipif(
    shutil.which("zip") is None, reason="needs the zip command to make a real encrypted archive"
)
def test_archive_encrypted_by_zip_is_400(user_client, media_root, tmp_path):
    for index, data in enumerate(distinct_images(2)):
        (tmp_path / f"g{index}.png").write_bytes(data)
    archive = tmp_path / "secret.zip"
    files = [str(tmp_path / "g0.png"), str(tmp_path / "g1.png")]
    subprocess.run([shutil.which("zip"), "-q", "-j", "-P", "s3cret", str(archive), *files], check=True)
    response = _post(user_client, archive=zip_upload(archive.read_bytes()))
    assert response.status_code == 400
    assert "encrypted" in response.json()["reason"]
    _nothing_saved(media_root)


def test_encrypted_catalogue_is_400(user_client, media_root):
    archive = make_zip([("a.png", distinct_images(1)[0]), ("catalogue.csv", b"file,id\na.png,G1\n")])
    response = _post(user_client, archive=zip_upload(with_method(archive, "catalogue.csv", flags=0x1)))
    assert response.status_code == 400
    assert "encrypted" in response.json()["reason"]
    _nothing_saved(media_root)


def test_corrupt_catalogue_data_is_400(user_client, media_root):
    catalogue = b"file,id\n" + b"".join(b"g%d.png,G%d\n" % (i, i) for i in range(500))
    archive = compressed_zip(
        [("a.png", distinct_images(1)[0], zipfile.ZIP_STORED), ("cat.csv", catalogue, zipfile.ZIP_LZMA)]
    )
    response = _post(user_client, archive=zip_upload(corrupted(archive, "cat.csv")))
    assert response.status_code == 400
    assert "catalogue 'cat.csv' is unreadable" in response.json()["reason"]
    _nothing_saved(media_root)


@pytest.mark.parametrize(
    ("method", "at", "junk"),
    [
        (zipfile.ZIP_LZMA, 30, b"\0" * 40),  # LZMAError: corrupt input data
        (zipfile.ZIP_LZMA, 4, b"\xff" * 8),  # LZMAError: unsupported options
        (zipfile.ZIP_BZIP2, 4, b"\xff" * 8),  # OSError: invalid data stream
        (zipfile.ZIP_DEFLATED, 0, b"\0" * 8),  # zlib.error
    ],
    ids=["lzma-data", "lzma-header", "bzip2", "deflate"],
)
def test_corrupt_compressed_member_fails_alone_and_the_job_ends(  # noqa: PLR0917 - fixtures and parameters
    user_client, media_root, django_capture_on_commit_callbacks, method, at, junk
):
    good, bad = distinct_images(2, size=(120, 100))
    archive = compressed_zip([("good.png", good, zipfile.ZIP_DEFLATED), ("bad.png", bad, method)])
    response = _post(user_client, archive=zip_upload(corrupted(archive, "bad.png", at=at, junk=junk)))
    assert response.status_code == 202, response.content
    with django_capture_on_commit_callbacks(execute=True):
        job = run_chunks_inline(Job.objects.get(pk=response.json()["id"]))
    assert job.status == Job.Status.SUCCEEDED
    assert (job.total, job.done, job.failed) == (2, 1, 1)
    assert "corrupt or could not be read" in job.members.get(path="bad.png").error
    assert Prediction.objects.filter(job=job).count() == 1


def test_a_file_the_decoder_fails_on_unexpectedly_fails_alone_in_its_chunk(
    user_client, monkeypatch, django_capture_on_commit_callbacks
):
    # Fault injection: a decoder bug that raises something other than a decode error for one
    # file. Before, the whole chunk (its good images too) was dropped and the job ran for ever.
    good, trigger = distinct_images(2)
    prepare = GalaxyClassifier.prepare

    def buggy_prepare(self, data, *args, **kwargs):
        if data == trigger:
            raise ValueError("a decoder bug")
        return prepare(self, data, *args, **kwargs)

    monkeypatch.setattr(GalaxyClassifier, "prepare", buggy_prepare)
    response = _post(
        user_client, archive=zip_upload(make_zip([("good.png", good), ("trigger.png", trigger)]))
    )
    assert response.status_code == 202, response.content
    with django_capture_on_commit_callbacks(execute=True):
        job = run_chunks_inline(Job.objects.get(pk=response.json()["id"]))
    assert (job.status, job.done, job.failed) == (Job.Status.SUCCEEDED, 1, 1)
    assert job.members.get(path="trigger.png").error == "the file could not be decoded (ValueError)"


def test_a_job_whose_staging_stops_unexpectedly_ends_failed(media_root):
    def explode():
        raise MemoryError

    members = [MemberInput(path="a.png", size=10, opener=explode)]
    with pytest.raises(MemoryError):
        job_services.job_create(name="a.png", members=members)
    job = Job.objects.get()
    assert job.status == Job.Status.FAILED
    assert job.error == "the job could not be staged (MemoryError)"


# Item 13: invisible characters in member paths ------------------------------------------


def test_bidi_and_zero_width_characters_are_cleaned_from_member_paths(
    user_client, django_capture_on_commit_callbacks
):
    images = distinct_images(3)
    names = ["north\u200b/\u202egnp.exe\u200d.png", "sou\ufeffth/b\u2066.png", "c\u200e.png"]
    catalogue = "file,id\n" + "".join(f"{name},G{index}\n" for index, name in enumerate(names))
    archive = make_zip([*zip(names, images, strict=True), ("catalogue.csv", catalogue.encode())])
    response = _post(user_client, archive=zip_upload(archive))
    assert response.status_code == 202, response.content
    job = Job.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        run_chunks_inline(job)
    expected = {"north/gnp.exe.png": "G0", "south/b.png": "G1", "c.png": "G2"}
    assert dict(job.members.values_list("path", "catalogue__id")) == expected
    results = b"".join(user_client.get(reverse("api:job-results-csv", args=[job.pk])).streaming_content)
    text = results.decode()
    assert all(path in text for path in expected)
    assert not any(ch in text for ch in "\u200b\u200d\u200e\u202e\u2066\ufeff")


def test_names_equal_once_cleaned_are_duplicates(user_client, media_root):
    images = distinct_images(2)
    response = _post(
        user_client, archive=zip_upload(make_zip([("a.png", images[0]), ("a\u200b.png", images[1])]))
    )
    assert response.status_code == 400
    assert "appears twice" in response.json()["reason"]
    _nothing_saved(media_root)


def test_a_drive_letter_hidden_behind_a_zero_width_character_is_refused(user_client, media_root):
    response = _post(
        user_client, archive=zip_upload(make_zip([("\u200bC:/windows/g.png", distinct_images(1)[0])]))
    )
    assert response.status_code == 400
    assert "absolute path" in response.json()["reason"]
    _nothing_saved(media_root)


def test_folder_file_names_are_cleaned_too(tmp_path):
    folder = tmp_path / "survey"
    folder.mkdir()
    (folder / "\u202egnp.exe.png").write_bytes(distinct_images(1)[0])
    submission = submission_from_paths([str(folder)])
    assert [member.path for member in submission.members] == ["gnp.exe.png"]


# Item 15: links in submit_job folders ---------------------------------------------------


def test_submit_job_skips_links_and_never_stages_their_targets(tmp_path, media_root):
    outside = tmp_path / "private"
    (outside / "more").mkdir(parents=True)
    own, secret, hidden = distinct_images(3)
    (outside / "secret.png").write_bytes(secret)
    (outside / "more" / "hidden.png").write_bytes(hidden)
    folder = tmp_path / "survey"
    folder.mkdir()
    (folder / "own.png").write_bytes(own)
    (folder / "link.png").symlink_to(outside / "secret.png")
    (folder / "linked-folder").symlink_to(outside / "more", target_is_directory=True)
    out, err = io.StringIO(), io.StringIO()
    call_command("submit_job", str(folder), stdout=out, stderr=err)
    job = Job.objects.get(pk=int(out.getvalue()))
    assert list(job.members.values_list("path", flat=True)) == ["own.png"]
    assert "skipped link.png: it is a symbolic link" in err.getvalue()
    assert "skipped linked-folder: it is a symbolic link" in err.getvalue()
    staged = b"".join(path.read_bytes() for path in media_files(media_root))
    assert own in staged
    assert secret not in staged
    assert hidden not in staged


def test_a_folder_of_links_only_is_refused(tmp_path):
    target = tmp_path / "secret.png"
    target.write_bytes(distinct_images(1)[0])
    folder = tmp_path / "survey"
    folder.mkdir()
    (folder / "link.png").symlink_to(target)
    with pytest.raises(CommandError, match=r"no files to classify \(1 symbolic link skipped\)"):
        call_command("submit_job", str(folder), stderr=io.StringIO())
    assert Job.objects.count() == 0


def test_a_file_swapped_for_a_link_after_listing_is_not_followed(tmp_path, media_root):
    own, swapped, secret = distinct_images(3)
    folder = tmp_path / "survey"
    folder.mkdir()
    (folder / "a.png").write_bytes(own)
    (folder / "b.png").write_bytes(swapped)
    (tmp_path / "secret.png").write_bytes(secret)
    submission = submission_from_paths([str(folder)])
    (folder / "b.png").unlink()
    (folder / "b.png").symlink_to(tmp_path / "secret.png")
    job = job_services.job_create(name=submission.name, members=submission.members)
    swapped_member = job.members.get(path="b.png")
    assert swapped_member.status == JobMember.Status.FAILED
    assert "could not be read" in swapped_member.error
    staged = b"".join(path.read_bytes() for path in media_files(media_root))
    assert own in staged
    assert secret not in staged


# Item 9 on a real worker -----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_on_a_real_worker_a_corrupt_member_fails_alone_and_the_job_ends(
    redis_celery, settings, user, tmp_path
):
    settings.JOB_CHUNK_SIZE = 2
    # Two chunks, each with a good image beside a member whose compressed data is corrupt.
    images = distinct_images(4, size=(120, 100))
    archive = compressed_zip(
        [
            ("a-good.png", images[0], zipfile.ZIP_DEFLATED),
            ("a-lzma.png", images[1], zipfile.ZIP_LZMA),
            ("b-good.png", images[2], zipfile.ZIP_DEFLATED),
            ("b-bzip2.png", images[3], zipfile.ZIP_BZIP2),
        ]
    )
    archive = corrupted(corrupted(archive, "a-lzma.png"), "b-bzip2.png", at=4, junk=b"\xff" * 8)
    worker = Worker(name="w1", broker_url=redis_celery, log_dir=tmp_path).wait_ready()
    try:
        job = wait_until_ended(submit_archive(user, archive))
    finally:
        worker.stop()
    assert (job.status, job.done, job.failed) == (Job.Status.SUCCEEDED, 2, 2)
    failed = dict(job.members.filter(status=JobMember.Status.FAILED).values_list("path", "error"))
    assert set(failed) == {"a-lzma.png", "b-bzip2.png"}
    assert all("corrupt or could not be read" in reason for reason in failed.values())
