"""Compliance reports: arrive with the reports issue."""
