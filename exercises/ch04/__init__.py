"""Chapter 04 exercises: edit tasks.py, grade with `make grade CH=04`."""
