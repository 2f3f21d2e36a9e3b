"""Chapter 14 reference solutions."""
