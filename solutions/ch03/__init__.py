"""Chapter 03 reference solutions."""
