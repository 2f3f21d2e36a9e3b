"""Chapter 08 reference solutions."""
