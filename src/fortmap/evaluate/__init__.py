"""Scoring of analysis runs against truth, and readers that turn benchmark data into GeoTIFFs."""
