"""Chapter 13 exercises: edit tasks.py, grade with `make grade CH=13`."""
