"""Offline studies run on the rated face sets, kept apart from the heads they study.

Each study is a package with a ``study`` module (:mod:`facecore.studies.age_attractiveness.study`),
which ``layers.py`` counts as offline code: serving code (stages, heads, the service) never imports
it. :mod:`facecore.studies.cli` adds the ``facecore study ...`` commands.
"""
