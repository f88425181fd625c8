"""Transfer on digits: a base that saw only 0-4 teaches 5-9 from 20 images per class, better than its head alone.

The baseline is the issue's: the same head (Dense(100, relu) -> Dense(5, softmax, no bias)), same seed,
optimizer, batch and epochs, trained from scratch on the same training images (their pixels). Both are
scored on every other 5-9 digit of the bundled sample (about 2,400 per draw), over two draws of 20 per class.
"""

from __future__ import annotations

import keras
import numpy as np

from vizcore import transfer


def head_from_scratch(train, settings: transfer.TeachSettings) -> keras.Model:
    hidden, scores = transfer.head_layers(train.num_classes, settings.head_units, seed=settings.seed)
    inputs = keras.Input(train.image_shape)
    model = keras.Model(inputs, scores(hidden(keras.layers.Flatten()(inputs))))
    model.compile(keras.optimizers.Adam(settings.learning_rate), "sparse_categorical_crossentropy")
    model.fit(train.x_nhwc, train.y, epochs=settings.epochs, batch_size=settings.batch_size, shuffle=True, verbose=0)
    return model


def accuracy(model, held_out) -> float:
    return float(np.mean(model.predict(held_out.x_nhwc, batch_size=512, verbose=0).argmax(axis=1) == held_out.y))


def test_a_base_that_knows_0_to_4_teaches_5_to_9_better_than_the_head_from_scratch(digits_base, draw):
    settings = transfer.TeachSettings()  # Teachable Machine's recipe: 50 epochs, batch 16, Adam 1e-3, 15% validation
    taught, scratch, sizes = [], [], []
    for seed in (0, 1):
        few, held_out = draw(seed=seed)
        result = transfer.teach(digits_base, few, settings)
        assert result.status == "completed" and len(result.train_indices) == 85 and len(result.validation_indices) == 15
        keras.utils.set_random_seed(seed)
        baseline = head_from_scratch(few.subset(result.train_indices), settings)
        taught.append(accuracy(result.model, held_out))
        scratch.append(accuracy(baseline, held_out))
        sizes.append(len(held_out))
    print(f"\nheld-out digits 5-9 ({sizes} images): transfer {taught}, head from scratch {scratch}")
    assert np.average(taught, weights=sizes) > np.average(scratch, weights=sizes) + 0.01
    assert min(taught) > 0.8  # far above chance (0.2): the 0-4 features carry over
