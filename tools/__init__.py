"""Commands for people: loading DICOM files into the store."""
