"""Classify CIFAR-10 images with ConvMixer, a patch-based all-convolutional network.

ConvMixer cuts the image into non-overlapping patches with one strided
convolution, then repeats a "mixer" block that keeps the resolution fixed: a
depthwise convolution with a wide kernel mixes neighbouring positions (inside a
residual connection), and a 1x1 convolution mixes channels. Every convolution is
followed by GELU and BatchNormalization. Training reads batches from a
``tf.data``-style pipeline (shuffle, batch, a ``map`` that pads and randomly
crops and flips, prefetch), uses AdamW and keeps the epoch with the best
validation accuracy through a ModelCheckpoint. At the end the learned
patch-embedding and depthwise kernels are drawn.

After the keras.io example "Image classification with ConvMixer"
(https://keras.io/examples/vision/convmixer/), written anew for layernet; it runs
under Keras 3 with the imports swapped (``tf_data`` is then TensorFlow's ``tf.data``).

Data: CIFAR-10 from ``keras.datasets.cifar10`` (Keras's cache, downloaded when
missing); the last tenth of the training images validates. Without the file and
without a network, the block marked "offline stand-in" takes synthetic
CIFAR-shaped images of ``_offline.py`` (one colour pattern per class) and
prints a note.

Run: ``python examples/keras_io/convmixer.py`` (full: ConvMixer-256/8, 10 epochs), or
``python examples/keras_io/_short.py convmixer`` (ConvMixer-32/4, one short epoch).
"""

import _offline  # offline stand-in data (examples/keras_io/_offline.py)
import matplotlib.pyplot as plt
import numpy as np

import layernet as keras  # Keras 3: import keras
from layernet import data as tf_data  # Keras 3: from tensorflow import data as tf_data
from layernet import layers, ops  # Keras 3: from keras import layers, ops

# Settings: ConvMixer-WIDTH/DEPTH with KERNEL_SIZE x KERNEL_SIZE depthwise kernels.
WIDTH = 256
DEPTH = 8
KERNEL_SIZE = 5
PATCH_SIZE = 2
IMAGE_SIZE = 32
NUM_CLASSES = 10
PAD = 4  # pixels of zero padding before the random crop
BATCH_SIZE = 128
EPOCHS = 10
LEARNING_RATE = 1e-3
WEIGHT_DECAY = 1e-4
CHECKPOINT = "convmixer_best.keras"

# --- layernet gallery: offline stand-in ---
try:
    (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
except OSError as error:  # no cached file and no network
    _offline.note("cifar-10-python.tar.gz", error)
    (x_train, y_train), (x_test, y_test) = _offline.cifar(10)
# --- end of the offline stand-in ---

n_val = len(x_train) // 10
x_fit, y_fit = x_train[:-n_val], y_train[:-n_val]
x_val, y_val = x_train[-n_val:], y_train[-n_val:]
print(f"{len(x_fit)} training, {len(x_val)} validation and {len(x_test)} test images")

# Random crop (of the zero-padded batch) and horizontal flip, applied to training batches.
jitter = keras.Sequential(
    [layers.RandomCrop(IMAGE_SIZE, IMAGE_SIZE), layers.RandomFlip("horizontal")],
    name="jitter",
)


def pad_crop_flip(images, labels):
    """Pad a batch by ``PAD`` pixels on each side, then crop it back at random and flip."""
    images = ops.cast(images, "float32")
    padded = ops.pad(images, [[0, 0], [PAD, PAD], [PAD, PAD], [0, 0]])
    return jitter(padded, training=True), labels


def pipeline(images, labels, training=False):
    """Batches of ``(images, labels)``; training batches are shuffled and augmented."""
    ds = tf_data.Dataset.from_tensor_slices((images, labels))
    if training:
        ds = ds.shuffle(10 * BATCH_SIZE)
    ds = ds.batch(BATCH_SIZE)
    if training:
        ds = ds.map(pad_crop_flip, num_parallel_calls=tf_data.AUTOTUNE)
    return ds.prefetch(tf_data.AUTOTUNE)


train_ds = pipeline(x_fit, y_fit, training=True)
val_ds = pipeline(x_val, y_val)
test_ds = pipeline(x_test, y_test)


def gelu_norm(x):
    """GELU, then BatchNormalization: what follows every convolution here."""
    x = layers.Activation("gelu")(x)
    return layers.BatchNormalization()(x)


def convmixer(width, depth, kernel_size, patch_size, num_classes):
    """ConvMixer-``width``/``depth`` for ``IMAGE_SIZE`` x ``IMAGE_SIZE`` RGB images."""
    images = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    x = layers.Rescaling(1.0 / 255)(images)
    x = layers.Conv2D(width, patch_size, strides=patch_size, name="patches")(x)
    x = gelu_norm(x)
    for block in range(depth):
        mixed = layers.DepthwiseConv2D(kernel_size, padding="same", name=f"spatial_{block}")(x)
        x = layers.Add()([gelu_norm(mixed), x])
        x = layers.Conv2D(width, 1, name=f"channel_{block}")(x)
        x = gelu_norm(x)
    x = layers.GlobalAveragePooling2D()(x)
    probabilities = layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(images, probabilities, name=f"convmixer_{width}_{depth}")


model = convmixer(WIDTH, DEPTH, KERNEL_SIZE, PATCH_SIZE, NUM_CLASSES)
model.compile(
    optimizer=keras.optimizers.AdamW(learning_rate=LEARNING_RATE, weight_decay=WEIGHT_DECAY),
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
)
keep_best = keras.callbacks.ModelCheckpoint(
    CHECKPOINT, monitor="val_accuracy", save_best_only=True, save_weights_only=False
)
history = model.fit(train_ds, validation_data=val_ds, epochs=EPOCHS, callbacks=[keep_best])

model.load_weights(CHECKPOINT)
test_loss, test_accuracy = model.evaluate(test_ds)
print(f"Test accuracy: {100 * test_accuracy:.2f}%")


def tile(kernels, title, n_shown=32, rgb=False):
    """Draw up to ``n_shown`` kernels, each scaled to [0, 1] on its own."""
    n = min(n_shown, len(kernels))
    cols = 8
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols, rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for k, ax in zip(range(n), axes.ravel(), strict=False):
        w = kernels[k]
        w = (w - w.min()) / (w.max() - w.min() + 1e-12)
        ax.imshow(w, cmap=None if rgb else "gray")
    fig.suptitle(title)
    plt.show()


# The stem's kernels: (patch, patch, 3, width) -> width small RGB images.
stem = model.get_layer("patches").get_weights()[0]
tile(np.transpose(stem, (3, 0, 1, 2)), "Patch-embedding kernels", rgb=True)

# A depthwise layer's kernels: (k, k, width, 1) -> width gray k x k images.
last_spatial = model.get_layer(f"spatial_{DEPTH - 1}")
depthwise = last_spatial.get_weights()[0]
tile(np.transpose(depthwise[..., 0], (2, 0, 1)), f"Depthwise kernels of {last_spatial.name}")
