"""The DICOM store the service exports from: its protocol, the blob container store and the DICOMweb store."""
