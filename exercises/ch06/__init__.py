"""Chapter 06 exercises: edit tasks.py, grade with `make grade CH=06`."""
