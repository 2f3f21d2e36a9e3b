"""Chapter 01 exercises: edit tasks.py, grade with `make grade CH=01`."""
