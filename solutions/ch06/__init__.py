"""Chapter 06 reference solutions."""
