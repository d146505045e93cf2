"""Log-ratio calibration of element intensities to lab values (Weltje & Tjallingii 2008)."""
