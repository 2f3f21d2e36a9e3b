"""Chapter 04 reference solutions."""
