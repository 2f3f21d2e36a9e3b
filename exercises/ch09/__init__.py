"""Chapter 09 exercises: edit tasks.py, grade with `make grade CH=09`."""
