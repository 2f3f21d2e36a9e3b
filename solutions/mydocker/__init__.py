"""The runtime of your own, reference solutions."""
