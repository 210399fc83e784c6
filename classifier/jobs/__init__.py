"""Classification jobs: whole catalogues classified in chunks on Celery workers.

What users submit is read, and refused when unsafe, by members.py (every file of a job),
zip_directory.py and archives.py (a .zip), catalogues.py (catalogue CSVs) and submissions.py
(the whole submission). services.py creates jobs and names every write for its callers:
staging.py keeps a job's files until a worker reads them, chunks.py classifies a chunk, and
states.py counts, cancels, fails and deletes. selectors.py reads jobs and their results;
views.py and api.py are the pages and the API; tasks.py is the Celery side, which calls
services like every caller (services send chunks to it by task name, never importing it).
"""
