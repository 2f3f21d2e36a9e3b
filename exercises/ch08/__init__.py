"""Chapter 08 exercises: edit tasks.py, grade with `make grade CH=08`."""
