"""The caller's blob container: validating its settings, sealing them, connecting, and the errors.log writer."""
