"""Chapter 10 exercises: edit tasks.py, grade with `make grade CH=10`."""
