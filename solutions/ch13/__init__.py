"""Chapter 13 reference solutions."""
