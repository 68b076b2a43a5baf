"""`baselines`: reference points that need no sparse autoencoder.

PCA's test FVU at every number of components k (the frontier figure's reference line:
the best k-dimensional linear code), and the linear probe on raw pixels and on PCA codes,
next to which the report prints published reference accuracies.
"""

from __future__ import annotations

from pathlib import Path

from ..params import load_params

# Published MNIST accuracies printed beside the probes (test set, 10 classes).
PUBLISHED_REFERENCES = [
    {
        "representation": "raw pixels",
        "accuracy": 0.92,
        "source": "softmax (multinomial logistic) regression on raw pixels, about 92% "
                  "(LeCun et al. 1998 list 88% for a 1-layer linear classifier; ~92% with softmax training, "
                  "as in the TensorFlow MNIST tutorial)",
    },
    {
        "representation": "sparse-autoencoder codes",
        "accuracy": 0.988,
        "source": "linear classifier on the codes of a 2000-unit winner-take-all sparse autoencoder at 5% "
                  "lifetime sparsity (Makhzani & Frey, Winner-Take-All Autoencoders, NeurIPS 2015)",
    },
]


def run(data_dir: Path, out_file: Path, params_file: Path) -> None:
    params = load_params(params_file)
    from ..data import load_split, read_manifest
    from ..io import write_json
    from ..probes import pca_basis, pca_codes, pca_fvu, probe_accuracy

    manifest = read_manifest(data_dir)
    train, test = load_split(data_dir, "train"), load_split(data_dir, "test")
    x_train = train.images.reshape(len(train.images), -1) / 255.0
    x_test = test.images.reshape(len(test.images), -1) / 255.0
    mean, components = pca_basis(x_train)
    k = params.probe.pca_components
    print("probing raw pixels and PCA codes ...", flush=True)
    raw = probe_accuracy(x_train, train.labels, x_test, test.labels, params.probe)
    pca = probe_accuracy(pca_codes(x_train, mean, components, k), train.labels,
                         pca_codes(x_test, mean, components, k), test.labels, params.probe)
    write_json(out_file, {
        "dataset": manifest["dataset"],
        "data_digest": manifest["digest"],
        "pca_fvu": pca_fvu(x_test, mean, components).tolist(),  # entry k-1: FVU with k components
        "probes": {"raw pixels": raw, f"PCA, {k} components": pca},
        "published": PUBLISHED_REFERENCES,
    })
    print(f"raw pixels {raw['probe_accuracy']:.4f}, PCA-{k} {pca['probe_accuracy']:.4f}", flush=True)
