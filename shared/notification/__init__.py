"""The export's completion event: its CloudEvents body, its Standard Webhooks signature, and its delivery."""
