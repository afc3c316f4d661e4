"""Acting on verdicts (block, annotate, alert): arrives with the actions issue."""
