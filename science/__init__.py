"""Science vertical: field downscaling, molecules, time series (not built yet)."""
