"""Chapter 07 reference solutions."""
