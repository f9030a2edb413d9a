"""Offline training tools: data preparation, augmentation, the training loop, fits and export (never imported by
the live server)."""
