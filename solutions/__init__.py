"""Reference solutions of the exercises, one package per chapter: ``solutions.ch01.tasks`` ...

Each ``solutions/chNN/tasks.py`` has the same functions, signatures and docstrings
as ``exercises/chNN/tasks.py``. Try first; read these when stuck, or load them on
purpose to continue with a later chapter (see exercises/README.md, "Stuck?").
The graded tests run against them with ``--solutions``.
"""
