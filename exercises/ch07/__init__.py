"""Chapter 07 exercises: edit tasks.py, grade with `make grade CH=07`."""
