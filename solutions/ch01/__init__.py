"""Chapter 01 reference solutions."""
