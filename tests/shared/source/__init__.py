"""Tests of shared/source: the DICOM stores and the multipart reader."""
