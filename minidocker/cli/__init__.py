"""The ``minidocker`` command line. Parsers in parsers.py, actions in commands.py."""
