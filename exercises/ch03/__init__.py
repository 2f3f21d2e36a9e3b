"""Chapter 03 exercises: edit tasks.py, grade with `make grade CH=03`."""
