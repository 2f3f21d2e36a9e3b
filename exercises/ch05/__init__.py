"""Chapter 05 exercises: edit tasks.py, grade with `make grade CH=05`."""
