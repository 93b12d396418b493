"""The export's own machinery: checkpoint and step payloads, resolution, batch copy, working files, step sessions."""
