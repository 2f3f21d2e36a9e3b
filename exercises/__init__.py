"""Exercises: stubs to fill in, one package per chapter (``exercises.ch01.tasks`` ...), and their graded tests.

Grade with ``make grade CH=01`` (or ``TASK=1_2``); see exercises/README.md. Earlier
chapters' code comes through :func:`exercises.checkpoint.previous`.
"""
