"""Looking at a dataset: browse the grid, view one image, read the health report, preview augmentations."""
