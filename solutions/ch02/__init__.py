"""Chapter 02 reference solutions."""
