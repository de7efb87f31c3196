"""Imaging benchmark: our DICOMweb archive side by side with Orthanc, plus a 1,000,000-instance scale run."""
