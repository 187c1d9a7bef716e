import gzip
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from dsslab.data import DataNotFoundError
from dsslab.data.augment import normalize, random_crop_flip
from dsslab.data.batches import SubsetBatches, steps_per_epoch
from dsslab.data.digits import load_digits
from dsslab.data.idx import load_fashion_mnist, read_idx
from dsslab.data.imagefolder import load_imagefolder
from dsslab.data.splits import stratified_split


def test_stratified_split_takes_the_fraction_of_every_class_and_is_seeded():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    kept, held_out = stratified_split(labels, 0.1, seed=3)
    assert torch.bincount(labels[held_out]).tolist() == [5, 3, 2]
    assert sorted(kept.tolist() + held_out.tolist()) == list(range(100))
    again, _ = stratified_split(labels, 0.1, seed=3)
    other, _ = stratified_split(labels, 0.1, seed=4)
    assert torch.equal(kept, again) and not torch.equal(kept, other)


def test_a_class_of_two_keeps_one_sample_on_each_side():
    kept, held_out = stratified_split(torch.tensor([0, 0, 1, 1, 1, 1, 1, 1, 1, 1]), 0.1, 0)
    assert len(held_out) == 2 and len(kept) == 8


def test_digits_splits_are_disjoint_and_complete():
    splits = load_digits(SimpleNamespace(val_fraction=0.1, test_fraction=0.2), seed=0)
    sizes = [len(splits.train_labels), len(splits.val_labels), len(splits.test_labels)]
    assert sum(sizes) == 1797 and sizes == [1295, 143, 359]
    assert splits.image_shape == (1, 8, 8) and splits.train_images.dtype == torch.uint8
    assert splits.train_images.max() == 255


def write_idx(path, array: np.ndarray, compress: bool):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(
        size.to_bytes(4, "big") for size in array.shape)
    opener = gzip.open if compress else open
    with opener(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("compress", [True, False])
def test_idx_files_load_gzipped_or_not(tmp_path, compress):
    images = np.arange(4 * 28 * 28).reshape(4, 28, 28) % 256
    suffix = ".gz" if compress else ""
    for split, count in (("train", 4), ("t10k", 4)):
        write_idx(tmp_path / f"{split}-images-idx3-ubyte{suffix}", images[:count], compress)
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte{suffix}", np.array([0, 1, 0, 1]),
                  compress)
    assert torch.equal(read_idx(tmp_path / f"train-images-idx3-ubyte{suffix}"),
                       torch.from_numpy(images.astype(np.uint8)))
    splits = load_fashion_mnist(SimpleNamespace(root=str(tmp_path), download=False,
                                                val_fraction=0.5), seed=0)
    assert splits.image_shape == (1, 28, 28) and len(splits.test_labels) == 4


def test_missing_fashion_mnist_names_the_path_and_how_to_get_it(tmp_path):
    settings = SimpleNamespace(root=str(tmp_path / "nowhere"), download=False, val_fraction=0.1)
    with pytest.raises(DataNotFoundError, match="nowhere.*apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(settings, seed=0)


def make_image_folder(root, classes=("cat", "dog"), per_class=3):
    from PIL import Image

    for split in ("train", "test"):
        for index, name in enumerate(classes):
            (root / split / name).mkdir(parents=True)
            for number in range(per_class):
                color = (40 * index, 10 * number, 200)
                Image.new("RGB", (12, 10), color).save(root / split / name / f"{number}.png")


def test_image_folder_decodes_resized_images_with_folder_labels(tmp_path, monkeypatch):
    monkeypatch.setattr("dsslab.data.imagefolder.CACHE_DIR", tmp_path / "cache")
    make_image_folder(tmp_path / "images")
    settings = SimpleNamespace(root=str(tmp_path / "images"), val_fraction=0.34, image_size=8,
                               channels=3, cache=True)
    splits = load_imagefolder(settings, seed=0)
    assert splits.image_shape == (3, 8, 8) and splits.num_classes == 2
    assert torch.bincount(splits.test_labels).tolist() == [3, 3]
    assert splits.test_images[3, :, 0, 0].tolist() == [40, 0, 200]  # dog/0.png
    cached = load_imagefolder(settings, seed=0)
    assert torch.equal(cached.test_images, splits.test_images)


def test_image_folder_without_train_and_test_names_what_it_expected(tmp_path):
    settings = SimpleNamespace(root=str(tmp_path), val_fraction=0.1, image_size=8, channels=3,
                               cache=False)
    with pytest.raises(DataNotFoundError, match=f"{tmp_path}/train"):
        load_imagefolder(settings, seed=0)


def test_crop_without_padding_only_flips_the_drawn_images():
    images = torch.arange(2 * 1 * 3 * 4, dtype=torch.uint8).reshape(2, 1, 3, 4)
    generator = torch.Generator().manual_seed(0)
    out = random_crop_flip(images, generator, padding=0)
    reference = torch.Generator().manual_seed(0)
    torch.randint(0, 1, (2, 2), generator=reference)
    flips = torch.rand(2, generator=reference) < 0.5
    for image, flipped, expected_flip in zip(images, out, flips):
        assert torch.equal(flipped, image.flip(-1) if expected_flip else image)


def test_crop_shifts_by_the_drawn_offsets_and_pads_with_zeros():
    images = torch.full((1, 1, 4, 4), 9, dtype=torch.uint8)
    out = random_crop_flip(images, torch.Generator().manual_seed(1), padding=2)
    reference = torch.Generator().manual_seed(1)
    dy, dx = torch.randint(0, 5, (2, 1), generator=reference).flatten().tolist()
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))[0, 0, dy:dy + 4, dx:dx + 4]
    flip = (torch.rand(1, generator=reference) < 0.5).item()
    assert torch.equal(out[0, 0], padded.flip(-1) if flip else padded)


def test_normalize_standardises_each_channel():
    images = torch.tensor([[[[0, 255]], [[51, 51]]]], dtype=torch.uint8)
    out = normalize(images, mean=(0.5, 0.2), std=(0.5, 0.1))
    assert torch.allclose(out, torch.tensor([[[[-1.0, 1.0]], [[0.0, 0.0]]]]), atol=1e-6)


def test_an_epoch_covers_the_subset_once_in_a_seeded_order_with_its_weights():
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 1, 2, 2).clone()
    labels = torch.arange(10)
    batches = SubsetBatches(images, labels, batch_size=3, device="cpu", augment=False,
                            mean=(0.0,), std=(1 / 255,), seed=0)
    indices, weights = torch.tensor([1, 4, 7, 8]), torch.tensor([1.0, 2.0, 3.0, 4.0])
    epoch = list(batches.epoch(indices, weights, epoch=1))
    assert [len(labels) for _, labels, _ in epoch] == [3, 1]
    seen = torch.cat([labels for _, labels, _ in epoch])
    assert sorted(seen.tolist()) == [1, 4, 7, 8]
    weight_of = dict(zip(indices.tolist(), weights.tolist()))
    for images_batch, labels_batch, weights_batch in epoch:
        assert images_batch[:, 0, 0, 0].round().tolist() == labels_batch.float().tolist()
        assert weights_batch.tolist() == [weight_of[label] for label in labels_batch.tolist()]
    again = torch.cat([labels for _, labels, _ in batches.epoch(indices, weights, epoch=1)])
    assert torch.equal(seen, again)


def test_a_subset_smaller_than_a_batch_still_takes_one_step():
    assert steps_per_epoch(3, 32) == 1 and steps_per_epoch(0, 32) == 1
    assert steps_per_epoch(65, 32) == 3
