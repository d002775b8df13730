"""Models of the prioritization app."""
