"""Chapter 10 reference solutions."""
