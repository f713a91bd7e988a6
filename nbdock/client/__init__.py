"""nbdock."""
