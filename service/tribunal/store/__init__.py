"""The record of verdicts: arrives with the store issue."""
