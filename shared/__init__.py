"""The export domain: identifiers, requests, the DICOM store, destinations, error logs and operation status."""
