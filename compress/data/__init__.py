"""The data stage: where the images come from (the Fashion-MNIST IDX files, checked by sha256), the
seeded validation split carved from training, and the fingerprint that keys every cache."""
