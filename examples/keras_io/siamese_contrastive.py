"""Learn whether two MNIST digits show the same number, with a contrastive loss.

Both digits of a pair go through one shared convolutional tower that maps an
image to a small embedding. The Euclidean distance between the two embeddings,
rescaled by a BatchNormalization and a one-unit sigmoid Dense layer, is the
model's output: near 0 for a matching pair, near 1 for a mismatched one. The
loss is the contrastive loss, a plain function written with ``keras.ops`` and
handed to ``compile``: for a matching pair (label 0) it is the squared output,
for a mismatched pair (label 1) the squared amount by which the output falls
short of a margin.

After the keras.io example "Image similarity estimation using a Siamese Network
with a contrastive loss" (https://keras.io/examples/vision/siamese_contrastive/),
written anew for layernet; it runs under Keras 3 with the imports swapped.

Data: MNIST from ``keras.datasets.mnist`` (Keras's cache, downloaded when
missing); the first ``TRAIN_IMAGES`` training digits make the training pairs, the
rest the validation pairs, the test digits the test pairs. Without the file and
without a network, the block marked "offline stand-in" takes the MNIST-shaped
digits of ``_offline.py`` and prints a note.

Run: ``python examples/keras_io/siamese_contrastive.py`` (full), or
``python examples/keras_io/_short.py siamese_contrastive`` (one short epoch).
"""

import _offline  # offline stand-in data (examples/keras_io/_offline.py)
import matplotlib.pyplot as plt
import numpy as np

import layernet as keras  # Keras 3: import keras
from layernet import layers, ops  # Keras 3: from keras import layers, ops

# Settings.
TRAIN_IMAGES = 30000  # training digits used for training pairs; the rest validate
MARGIN = 1.0  # how far apart mismatched pairs are pushed
EPOCHS = 10
BATCH_SIZE = 16
N_SHOWN = 8  # pairs drawn per figure

# --- layernet gallery: offline stand-in ---
try:
    (digits, numbers), (test_digits, test_numbers) = keras.datasets.mnist.load_data()
except OSError as error:  # no cached file and no network
    _offline.note("mnist.npz", error)
    (digits, numbers), (test_digits, test_numbers) = _offline.mnist()
# --- end of the offline stand-in ---


def make_pairs(images, labels, rng):
    """Two pairs per image: one with a random image of the same number, one of another.

    Returns ``(first, second, mismatch)``: the images of every pair and a float32
    column that is 0.0 for a matching pair and 1.0 for a mismatched one.
    """
    by_number = [np.flatnonzero(labels == k) for k in range(10)]
    partners_same = np.array([rng.choice(by_number[k]) for k in labels])
    other = (labels + rng.integers(1, 10, size=len(labels))) % 10  # never the same number
    partners_other = np.array([rng.choice(by_number[k]) for k in other])
    first = np.concatenate([images, images])
    second = np.concatenate([images[partners_same], images[partners_other]])
    mismatch = np.concatenate([np.zeros(len(images)), np.ones(len(images))])
    order = rng.permutation(len(first))
    return first[order], second[order], mismatch[order].astype("float32")[:, None]


def scaled(images):
    """uint8 ``(n, 28, 28)`` -> float32 ``(n, 28, 28, 1)`` in [0, 1]."""
    return np.expand_dims(images.astype("float32") / 255.0, axis=-1)


def draw_pairs(first, second, mismatch, title, outputs=None):
    """Draw ``N_SHOWN`` pairs side by side, captioned with their label (and output)."""
    fig, axes = plt.subplots(1, N_SHOWN, figsize=(2.0 * N_SHOWN, 2.4))
    for i, ax in enumerate(axes):
        ax.imshow(np.hstack([first[i, ..., 0], second[i, ..., 0]]), cmap="gray")
        caption = "different" if mismatch[i, 0] else "same"
        if outputs is not None:
            caption += f"\noutput {outputs[i, 0]:.2f}"
        ax.set_title(caption, fontsize=9)
        ax.axis("off")
    fig.suptitle(title)
    plt.show()


def euclidean_distance(pair):
    """Row-wise distance between the two embeddings of ``pair``, kept away from 0.

    The square root's derivative is unbounded at 0, so the squared distance is
    clipped below at the backend's epsilon first.
    """
    a, b = pair
    squared = ops.sum(ops.square(a - b), axis=1, keepdims=True)
    return ops.sqrt(ops.maximum(squared, keras.backend.epsilon()))


def contrastive(margin):
    """The contrastive loss with the given margin, as a ``loss(y_true, y_pred)`` function.

    ``y_true`` is 1 for a mismatched pair and 0 for a matching one; ``y_pred`` is the
    model's distance-like output ``d``. The loss averages
    ``(1 - y) * d**2 + y * max(margin - d, 0)**2`` over the batch.
    """

    def loss(y_true, y_pred):
        pull = ops.square(y_pred)
        push = ops.square(ops.maximum(margin - y_pred, 0.0))
        return ops.mean((1.0 - y_true) * pull + y_true * push)

    return loss


def make_tower():
    """The shared embedding network: a 28x28x1 digit -> 10 numbers."""
    digit = keras.Input(shape=(28, 28, 1))
    h = layers.BatchNormalization()(digit)
    h = layers.Conv2D(4, kernel_size=5, activation="tanh")(h)
    h = layers.AveragePooling2D(pool_size=2)(h)
    h = layers.Conv2D(16, kernel_size=5, activation="tanh")(h)
    h = layers.AveragePooling2D(pool_size=2)(h)
    h = layers.Flatten()(h)
    h = layers.BatchNormalization()(h)
    embedding = layers.Dense(10, activation="tanh")(h)
    return keras.Model(digit, embedding, name="tower")


def make_siamese():
    """Two digits in, one distance-like number in [0, 1] out."""
    tower = make_tower()
    left = keras.Input(shape=(28, 28, 1), name="left")
    right = keras.Input(shape=(28, 28, 1), name="right")
    distance = layers.Lambda(euclidean_distance, name="distance")([tower(left), tower(right)])
    distance = layers.BatchNormalization()(distance)
    output = layers.Dense(1, activation="sigmoid", name="mismatch")(distance)
    return keras.Model([left, right], output, name="siamese")


rng = np.random.default_rng(seed=11)
images, test_images = scaled(digits), scaled(test_digits)
train_a, train_b, train_y = make_pairs(images[:TRAIN_IMAGES], numbers[:TRAIN_IMAGES], rng)
val_a, val_b, val_y = make_pairs(images[TRAIN_IMAGES:], numbers[TRAIN_IMAGES:], rng)
test_a, test_b, test_y = make_pairs(test_images, test_numbers, rng)
print(f"pairs: {len(train_y)} training, {len(val_y)} validation, {len(test_y)} test")
draw_pairs(train_a, train_b, train_y, "Training pairs")

siamese = make_siamese()
siamese.compile(loss=contrastive(MARGIN), optimizer="rmsprop", metrics=["accuracy"])
siamese.summary()

history = siamese.fit(
    [train_a, train_b],
    train_y,
    validation_data=([val_a, val_b], val_y),
    batch_size=BATCH_SIZE,
    epochs=EPOCHS,
)

fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
for key, ax in (("loss", ax_loss), ("accuracy", ax_acc)):
    ax.plot(history.history[key], label="training")
    ax.plot(history.history[f"val_{key}"], label="validation")
    ax.set_xlabel("epoch")
    ax.set_title(key)
    ax.legend()
plt.show()

test_loss, test_accuracy = siamese.evaluate([test_a, test_b], test_y)
print(f"Test loss {test_loss:.4f}, test accuracy {test_accuracy:.4f}")

test_outputs = siamese.predict([test_a, test_b])
draw_pairs(test_a, test_b, test_y, "Test pairs and the model's outputs", test_outputs)
