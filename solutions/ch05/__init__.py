"""Chapter 05 reference solutions."""
