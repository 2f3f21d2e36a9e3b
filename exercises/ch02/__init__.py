"""Chapter 02 exercises: edit tasks.py, grade with `make grade CH=02`."""
