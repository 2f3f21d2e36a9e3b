"""Chapter 11 reference solutions."""
