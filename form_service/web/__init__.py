"""Web plumbing shared by every page: security, errors, rendering, limits, logging, health."""
