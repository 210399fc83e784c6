"""The Django-free model core, shared by the web app and training (ml/).

Its modules import neither Django nor any other part of classifier (a test imports each in a
process without settings): whatever depends on settings, the database or metrics is passed in
by the caller, as classifier.predictions.inference does for the served model.
"""
