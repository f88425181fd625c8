"""Data: the bundled MNIST sample, ``keras.datasets`` and generated shapes (``datasets``); image loading,
preprocessing and sample photos (``images``); one reader of user files (``sources``); ZIP datasets
(``archive``); drawings (``canvas``). Knows images and labels, not models."""
