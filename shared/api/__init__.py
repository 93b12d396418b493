"""What the caller sees: request parsing, starting an export, operation status and cancel."""
