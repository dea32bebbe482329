"""Tell cats from dogs with a small Xception-style network trained from scratch.

The photos are read from a folder with one subfolder per class
(``PetImages/Cat``, ``PetImages/Dog``). Files that are not JFIF JPEGs are
removed first, then ``keras.utils.image_dataset_from_directory`` splits the
folder into training and validation batches. Training batches are augmented
(random flips and rotations) through the data set's ``map``; both are
prefetched. The network is a strided convolution stem followed by blocks of
SeparableConv2D + BatchNormalization layers, each block downsampled by max
pooling and added to a strided 1x1 projection of its input (residual
connections), ending in global average pooling and one logit. A checkpoint is
written every epoch; at the end one photo is classified.

After the keras.io example "Image classification from scratch"
(https://keras.io/examples/vision/image_classification_from_scratch/), written
anew for layernet; it runs under Keras 3 with the imports
swapped (``tf_data`` is then TensorFlow's ``tf.data``).

Data: Kaggle's Cats vs Dogs photos, unpacked into ``PetImages`` in the current
folder. Without that folder, the block marked "offline stand-in" writes a
stand-in ``PetImages`` to a temporary folder with ``_offline.py`` (JPEG images of
bright discs, "Cat", and bars, "Dog", on noisy backgrounds) and changes to it.

Run: ``python examples/keras_io/image_classification_from_scratch.py`` in the
folder holding ``PetImages`` (full: 180x180 images, 25 epochs), or
``python examples/keras_io/_short.py image_classification_from_scratch``
(32x32 images, narrower blocks, one short epoch).
"""

import os

import _offline  # offline stand-in data (examples/keras_io/_offline.py)
import matplotlib.pyplot as plt
import numpy as np

import layernet as keras  # Keras 3: import keras
from layernet import data as tf_data  # Keras 3: from tensorflow import data as tf_data
from layernet import layers, ops  # Keras 3: from keras import layers, ops

# Settings.
DATA_DIR = "PetImages"
IMAGE_SIZE = (180, 180)
BATCH_SIZE = 128
STEM_FILTERS = 128
BLOCK_FILTERS = [256, 512, 728]  # one downsampling residual block per entry
TOP_FILTERS = 1024
EPOCHS = 25
SAMPLE_PHOTO = os.path.join(DATA_DIR, "Cat", "6779.jpg")

# --- layernet gallery: offline stand-in ---
if not os.path.isdir(DATA_DIR):
    print("[layernet gallery] no PetImages folder here (the Kaggle download).")
    os.chdir(_offline.pet_images())
# --- end of the offline stand-in ---


def remove_non_jfif(root):
    """Delete every file under ``root``'s class folders whose header lacks ``JFIF``.

    Returns how many were deleted. (The Kaggle archive holds some files that are
    not JPEG images at all.)
    """
    removed = 0
    for class_name in sorted(os.listdir(root)):
        folder = os.path.join(root, class_name)
        for file_name in sorted(os.listdir(folder)):
            path = os.path.join(folder, file_name)
            with open(path, "rb") as f:
                is_jfif = b"JFIF" in f.read(10)
            if not is_jfif:
                os.remove(path)
                removed += 1
    return removed


print(f"Removed {remove_non_jfif(DATA_DIR)} files that are not JFIF images.")

train_ds, val_ds = keras.utils.image_dataset_from_directory(
    DATA_DIR,
    validation_split=0.2,
    subset="both",
    seed=2024,
    image_size=IMAGE_SIZE,
    batch_size=BATCH_SIZE,
)
class_names = train_ds.class_names


def show_grid(images, labels, title):
    """Draw up to 9 images of a batch, titled with their class names."""
    plt.figure(figsize=(7, 7))
    for i in range(min(9, len(images))):
        ax = plt.subplot(3, 3, i + 1)
        ax.imshow(np.asarray(images[i]).astype("uint8"))
        ax.set_title(class_names[int(labels[i])])
        ax.axis("off")
    plt.suptitle(title)
    plt.show()


for images, labels in train_ds.take(1):
    show_grid(images, labels, "A training batch")

flip_and_rotate = [layers.RandomFlip("horizontal"), layers.RandomRotation(0.1)]


def augment(images):
    """Apply the random layers one after the other (new draws on every call)."""
    for layer in flip_and_rotate:
        images = layer(images)
    return images


for images, labels in train_ds.take(1):
    show_grid(augment(images), labels, "The same batch, augmented")

train_ds = train_ds.map(
    lambda images, labels: (augment(images), labels), num_parallel_calls=tf_data.AUTOTUNE
)
train_ds = train_ds.prefetch(tf_data.AUTOTUNE)
val_ds = val_ds.prefetch(tf_data.AUTOTUNE)


def norm_relu(x):
    """BatchNormalization, then ReLU."""
    return layers.Activation("relu")(layers.BatchNormalization()(x))


def xception_like(input_shape, stem, blocks, top):
    """A small Xception-style binary classifier: images in, one logit out."""
    images = keras.Input(shape=input_shape)
    x = layers.Rescaling(1.0 / 255)(images)
    x = norm_relu(layers.Conv2D(stem, 3, strides=2, padding="same")(x))
    for filters in blocks:
        shortcut = x
        x = layers.Activation("relu")(x)
        x = norm_relu(layers.SeparableConv2D(filters, 3, padding="same")(x))
        x = layers.BatchNormalization()(layers.SeparableConv2D(filters, 3, padding="same")(x))
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        projected = layers.Conv2D(filters, 1, strides=2, padding="same")(shortcut)
        x = layers.add([x, projected])
    x = norm_relu(layers.SeparableConv2D(top, 3, padding="same")(x))
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.25)(x)
    logit = layers.Dense(1)(x)
    return keras.Model(images, logit, name="xception_like")


model = xception_like((*IMAGE_SIZE, 3), STEM_FILTERS, BLOCK_FILTERS, TOP_FILTERS)
model.summary()
model.compile(
    optimizer=keras.optimizers.Adam(3e-4),
    loss=keras.losses.BinaryCrossentropy(from_logits=True),
    metrics=[keras.metrics.BinaryAccuracy(name="acc")],
)
model.fit(
    train_ds,
    epochs=EPOCHS,
    validation_data=val_ds,
    callbacks=[keras.callbacks.ModelCheckpoint("pets_epoch_{epoch}.keras")],
)

# Classify one photo: class 1 ("Dog") is the sigmoid of the logit.
photo = keras.utils.load_img(SAMPLE_PHOTO, target_size=IMAGE_SIZE)
batch = ops.expand_dims(keras.utils.img_to_array(photo), 0)
dog = float(ops.convert_to_numpy(ops.sigmoid(model.predict(batch)))[0, 0])
print(f"{SAMPLE_PHOTO}: {100 * (1 - dog):.2f}% cat, {100 * dog:.2f}% dog")
