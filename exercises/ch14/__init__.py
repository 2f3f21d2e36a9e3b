"""Chapter 14 exercises: edit tasks.py, grade with `make grade CH=14`."""
