"""Classify CIFAR-100 images with a small Vision Transformer (ViT).

Each image is normalized, resized and randomly flipped, rotated and zoomed
(preprocessing layers in a Sequential), then cut into square patches with
``ops.image.extract_patches`` inside a custom layer. A second custom layer
projects every flattened patch with a Dense layer and adds a learned position
vector, looked up by an Embedding layer on the patch indices in its ``call()``.
A stack of pre-norm Transformer encoder blocks (MultiHeadAttention and a GELU
MLP, each inside a residual connection) follows, and an MLP head on the
flattened tokens gives the class logits. Training uses AdamW; top-1 and top-5
accuracy are reported on the test images.

After the keras.io example "Image classification with Vision Transformer"
(https://keras.io/examples/vision/image_classification_with_vision_transformer/),
written anew for layernet; it runs under Keras 3 with the imports swapped.

Data: CIFAR-100 from ``keras.datasets.cifar100`` (Keras's cache, downloaded when
missing). Without the file and without a network, the block marked "offline
stand-in" takes synthetic CIFAR-shaped images of ``_offline.py`` (100 classes,
one colour pattern each) and prints a note.

Run: ``python examples/keras_io/image_classification_with_vision_transformer.py``
(full: 72x72 inputs, 8 blocks, 100 epochs), or ``python examples/keras_io/_short.py
image_classification_with_vision_transformer`` (smaller sizes, one short epoch).
"""

import _offline  # offline stand-in data (examples/keras_io/_offline.py)
import matplotlib.pyplot as plt

import layernet as keras  # Keras 3: import keras
from layernet import layers, ops  # Keras 3: from keras import layers, ops

# Settings.
NUM_CLASSES = 100
IMAGE_SIZE = 72  # images are resized to IMAGE_SIZE x IMAGE_SIZE
PATCH_SIZE = 6  # patches are PATCH_SIZE x PATCH_SIZE pixels
EMBED_DIM = 64  # width of every token
NUM_HEADS = 4
BLOCKS = 8  # Transformer encoder blocks
HEAD_UNITS = [2048, 1024]  # hidden units of the classification head
LEARNING_RATE = 1e-3
WEIGHT_DECAY = 1e-4
BATCH_SIZE = 256
EPOCHS = 100

# --- layernet gallery: offline stand-in ---
try:
    (x_train, y_train), (x_test, y_test) = keras.datasets.cifar100.load_data()
except OSError as error:  # no cached file and no network
    _offline.note("cifar-100-python.tar.gz", error)
    (x_train, y_train), (x_test, y_test) = _offline.cifar(100)
# --- end of the offline stand-in ---

x_train = x_train.astype("float32")
x_test = x_test.astype("float32")
grid = IMAGE_SIZE // PATCH_SIZE
n_patches = grid * grid
print(f"train {x_train.shape}, test {x_test.shape}; {n_patches} patches per resized image")

# Normalization learns the training set's per-channel mean and variance (adapt);
# the random layers act only while training.
preprocess = keras.Sequential(
    [
        layers.Normalization(),
        layers.Resizing(IMAGE_SIZE, IMAGE_SIZE),
        layers.RandomFlip("horizontal"),
        layers.RandomRotation(factor=0.02),
        layers.RandomZoom(height_factor=0.2, width_factor=0.2),
    ],
    name="preprocess",
)
preprocess.layers[0].adapt(x_train)


class PatchGrid(layers.Layer):
    """Cut a batch of images into non-overlapping square patches, flattened.

    ``(batch, height, width, channels)`` -> ``(batch, n_patches, size * size * channels)``.
    """

    def __init__(self, size, **kwargs):
        super().__init__(**kwargs)
        self.size = size

    def call(self, images):
        patches = ops.image.extract_patches(images, self.size)  # (batch, rows, cols, dim)
        _, rows, cols, dim = ops.shape(patches)
        return ops.reshape(patches, (-1, rows * cols, dim))

    def get_config(self):
        return {**super().get_config(), "size": self.size}


class PatchEmbedding(layers.Layer):
    """Project each patch to ``dim`` numbers and add the position vector of its index."""

    def __init__(self, n_patches, dim, **kwargs):
        super().__init__(**kwargs)
        self.n_patches = n_patches
        self.dim = dim
        self.projection = layers.Dense(dim)
        self.positions = layers.Embedding(input_dim=n_patches, output_dim=dim)

    def call(self, patches):
        index = ops.expand_dims(ops.arange(0, self.n_patches), axis=0)  # (1, n_patches)
        return self.projection(patches) + self.positions(index)

    def get_config(self):
        return {**super().get_config(), "n_patches": self.n_patches, "dim": self.dim}


def gelu_mlp(x, units, dropout):
    """Dense layers with GELU, each followed by dropout."""
    for n in units:
        x = layers.Dense(n, activation=keras.activations.gelu)(x)
        x = layers.Dropout(dropout)(x)
    return x


def vision_transformer():
    """The ViT classifier: raw 32x32 images in, ``NUM_CLASSES`` logits out."""
    images = keras.Input(shape=x_train.shape[1:])
    tokens = PatchEmbedding(n_patches, EMBED_DIM)(PatchGrid(PATCH_SIZE)(preprocess(images)))
    for _ in range(BLOCKS):
        normed = layers.LayerNormalization(epsilon=1e-6)(tokens)
        attended = layers.MultiHeadAttention(num_heads=NUM_HEADS, key_dim=EMBED_DIM, dropout=0.1)(
            normed, normed
        )
        tokens = layers.Add()([attended, tokens])
        normed = layers.LayerNormalization(epsilon=1e-6)(tokens)
        tokens = layers.Add()([gelu_mlp(normed, [2 * EMBED_DIM, EMBED_DIM], 0.1), tokens])
    features = layers.LayerNormalization(epsilon=1e-6)(tokens)
    features = layers.Dropout(0.5)(layers.Flatten()(features))
    features = gelu_mlp(features, HEAD_UNITS, 0.5)
    logits = layers.Dense(NUM_CLASSES)(features)
    return keras.Model(images, logits, name="vit")


# One training image, resized and cut into patches, drawn patch by patch.
example = ops.image.resize(ops.convert_to_tensor(x_train[:1]), size=(IMAGE_SIZE, IMAGE_SIZE))
example_patches = ops.convert_to_numpy(PatchGrid(PATCH_SIZE)(example))
print(f"Patches per image: {example_patches.shape[1]}")
print(f"Elements per patch: {example_patches.shape[2]}")
fig, axes = plt.subplots(grid, grid, figsize=(4, 4))
for patch, ax in zip(example_patches[0], axes.ravel(), strict=True):
    ax.imshow(patch.reshape(PATCH_SIZE, PATCH_SIZE, 3).astype("uint8"))
    ax.axis("off")
plt.show()

vit = vision_transformer()
vit.compile(
    optimizer=keras.optimizers.AdamW(learning_rate=LEARNING_RATE, weight_decay=WEIGHT_DECAY),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=[
        keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
        keras.metrics.SparseTopKCategoricalAccuracy(5, name="top-5-accuracy"),
    ],
)
history = vit.fit(x_train, y_train, batch_size=BATCH_SIZE, epochs=EPOCHS, validation_split=0.1)
_, top1, top5 = vit.evaluate(x_test, y_test, batch_size=BATCH_SIZE)
print(f"Test accuracy: {100 * top1:.2f}%")
print(f"Test top 5 accuracy: {100 * top5:.2f}%")

plt.figure()
plt.plot(history.history["loss"], label="training loss")
plt.plot(history.history["val_loss"], label="validation loss")
plt.xlabel("epoch")
plt.legend()
plt.show()
