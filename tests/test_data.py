import pickle

import numpy as np
import pytest
import torch

from ssrbench.core.errors import DataError
from ssrbench.data import datasets as data_mod
from ssrbench.data.datasets import augment, load_cifar10


def test_missing_data_without_download_says_where_and_how(tmp_path):
    with pytest.raises(DataError) as err:
        load_cifar10(tmp_path / "nowhere", download=False)
    msg = str(err.value)
    assert str(tmp_path / "nowhere" / "cifar-10-batches-py") in msg and "SSRBENCH_DATA_DIR" in msg


def test_failed_download_is_a_clear_error(tmp_path, monkeypatch):
    def offline(root):
        raise OSError("network is unreachable")

    monkeypatch.setattr(data_mod, "_download_cifar10", offline)
    with pytest.raises(DataError, match="Download failed: OSError: network is unreachable"):
        load_cifar10(tmp_path, download=True)


def _fake_cifar(root, n=20, corrupt=None):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        d = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": list(rng.integers(0, 10, n))}
        (folder / name).write_bytes(b"garbage" if name == corrupt else pickle.dumps(d))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}))
    return folder


def test_loads_python_layout_without_md5_and_fingerprints(tmp_path):
    _fake_cifar(tmp_path)
    a = load_cifar10(tmp_path, download=False)
    assert a.train_x.shape == (100, 3, 32, 32) and a.test_x.shape == (20, 3, 32, 32)
    assert a.train_x.dtype == torch.uint8 and a.classes[0] == "c0"
    b = load_cifar10(tmp_path / "cifar-10-batches-py", download=False)  # the folder itself works too
    assert a.fingerprint == b.fingerprint


def test_unreadable_batch_names_the_file(tmp_path):
    folder = _fake_cifar(tmp_path, corrupt="data_batch_3")
    with pytest.raises(DataError, match=str(folder / "data_batch_3")):
        load_cifar10(tmp_path, download=False)


def test_fingerprint_changes_with_one_pixel():
    x = np.zeros((2, 3, 4, 4), np.uint8)
    y = x.copy()
    y[1, 2, 3, 3] = 1
    assert data_mod.fingerprint(x) != data_mod.fingerprint(y)


def test_augment_is_a_crop_or_flip_of_the_input():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    out = augment(x, torch.Generator().manual_seed(0), pad=0)  # no padding: only flips remain
    for i in range(2):
        assert torch.equal(out[i], x[i]) or torch.equal(out[i], x[i].flip(2))
    out = augment(x, torch.Generator().manual_seed(0), pad=2)
    assert out.shape == x.shape
