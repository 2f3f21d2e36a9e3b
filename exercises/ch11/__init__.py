"""Chapter 11 exercises: edit tasks.py, grade with `make grade CH=11`."""
