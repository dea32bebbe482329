"""A custom layer written with ``call()``: the antirectifier, trained on MNIST digits.

The antirectifier centres its input on the feature axis, keeps the positive part and
the (negated) negative part side by side, and mixes the doubled features back to the
input width with a trainable matrix. Nothing is thrown away, unlike a plain ReLU. The
layer creates its matrix with ``add_weight`` in ``build``, computes with ``ops`` only,
and serializes its initializer in ``get_config``. Two of them sit between dense layers
of an MNIST classifier trained from logits.

After the keras.io example "Simple custom layer example: Antirectifier"
(https://keras.io/examples/keras_recipes/antirectifier/), written anew for layernet;
it runs under Keras 3 with the imports swapped.

Data: ``keras.datasets.mnist.load_data`` reads ``mnist.npz`` from Keras's cache (or
downloads it). With neither a network nor a cached copy, the block marked
"layernet gallery: offline stand-in" generates images of the same format
(``_offline_sequences.mnist``: uint8 28x28, labels 0-9) and prints a note; figures on
them say nothing about MNIST.

Run it with ``python examples/keras_io/antirectifier.py``; a short run:
``python examples/keras_io/_short_sequences.py antirectifier --small-data --samples 6000``.
"""

import layernet as keras  # under Keras 3: import keras
from layernet import layers, ops  # under Keras 3: from keras import layers, ops


class Antirectifier(layers.Layer):
    """``concat(relu(x - mean(x)), relu(mean(x) - x)) @ W``, ``W`` of shape (2d, d).

    The output has as many features as the input: the two halves of the rectified,
    centred signal are projected back by ``W``.
    """

    def __init__(self, initializer="he_normal", **kwargs):
        super().__init__(**kwargs)
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape):
        width = input_shape[-1]
        self.mixing = self.add_weight(
            name="kernel",
            shape=(2 * width, width),
            initializer=self.initializer,
            trainable=True,
        )

    def call(self, x):
        centred = x - ops.mean(x, axis=-1, keepdims=True)
        halves = ops.concatenate([ops.relu(centred), ops.relu(-centred)], axis=-1)
        return ops.matmul(halves, self.mixing)

    def get_config(self):
        config = super().get_config()
        config["initializer"] = keras.initializers.serialize(self.initializer)
        return config


# --- layernet gallery: offline stand-in ---
try:
    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
except OSError:  # no cached mnist.npz and no network
    import _offline_sequences

    (x_train, y_train), (x_test, y_test) = _offline_sequences.mnist()
# --- end of the offline stand-in ---

# Flatten the images to 784 pixels in [0, 1].
x_train = x_train.reshape(len(x_train), -1).astype("float32") / 255.0
x_test = x_test.reshape(len(x_test), -1).astype("float32") / 255.0
print(f"Images: {len(x_train)} to train on, {len(x_test)} to test on, {x_train.shape[1]} pixels")

model = keras.Sequential(
    [
        keras.Input(shape=(784,)),
        layers.Dense(256),
        Antirectifier(),
        layers.Dense(256),
        Antirectifier(),
        layers.Dropout(0.5),
        layers.Dense(10),  # logits
    ],
    name="antirectifier_mnist",
)
model.compile(
    optimizer=keras.optimizers.RMSprop(),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
)
model.summary()
model.fit(x_train, y_train, batch_size=128, epochs=20, validation_split=0.15)
test_loss, test_accuracy = model.evaluate(x_test, y_test)
print(f"On the test images: loss {test_loss:.4f}, accuracy {test_accuracy:.4f}")
