"""Classification jobs: whole catalogues classified in chunks on Celery workers (issue 11).

archives.py reads what users submit (a .zip, files, a catalogue CSV) and refuses what is
unsafe; services.py creates, runs, cancels and deletes jobs; selectors.py reads them and
their results. classifier/jobs/tasks.py is the Celery side, and calls services like every caller.
"""
