"""De-identification of exported DICOM instances (PS3.15 Annex E Basic Profile and its options), as a stream."""
