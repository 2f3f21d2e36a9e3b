"""Chapter 09 reference solutions."""
