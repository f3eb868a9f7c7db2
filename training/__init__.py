"""Training-side code: data pipeline, augmentation, model training (not shipped in the wheel)."""
