"""`baselines`: reference points that need no sparse autoencoder.

PCA's test FVU at every number of components k (the frontier figure's reference line:
the best k-dimensional linear code, fitted on the fit split as the models are), and the linear probe on raw
pixels, on PCA codes and on the codes of untrained encoders at the frontier's widths (the random-encoder control,
per seed), each fitted on the fit split with C chosen on the validation split, next to which the report prints
published reference accuracies.
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


def random_encoder_codes(arch: str, params, seed: int, images) -> tuple:
    """Codes of `images` (fit first, then any others) by an untrained encoder at the frontier's width: the recipe's
    initialisation (the seed's weights, encoder as the decoder's transpose, centred on the fit mean), ReLU. The
    probe control: what a linear read-out gets from a random projection of that size, without any training."""
    import torch

    from ..penalties import NoPenalty
    from ..training import initial_model, to_float_images
    from ..heldout import encode_all

    fit, *others = (to_float_images(torch.from_numpy(i.copy()), torch.device("cpu")) for i in images)
    model = initial_model(arch, params.model, NoPenalty(), params.recipe, seed, fit.mean(0))
    return tuple(encode_all(model, x, params.evaluate.batch_size)[1].flatten(1).numpy() for x in (fit, *others))


def run(data_dir: Path, out_file: Path, params_file: Path) -> None:
    params = load_params(params_file)
    import torch

    from ..data import load_split, read_manifest
    from ..io import write_json
    from ..params import ARCHITECTURES
    from ..probes import choose_C_on_validation, pca_basis, pca_codes, pca_fvu, probe, probe_accuracy

    torch.set_num_threads(params.train.threads)
    manifest = read_manifest(data_dir)
    fit, validation = (load_split(data_dir, s, params.split.validation) for s in ("fit", "validation"))
    test = load_split(data_dir, "test")
    x_fit, x_val, x_test = (s.images.reshape(len(s.images), -1) / 255.0 for s in (fit, validation, test))
    mean, components = pca_basis(x_fit)
    k = params.probe.pca_components
    print("probing raw pixels and PCA codes ...", flush=True)
    pca = [pca_codes(x, mean, components, k) for x in (x_fit, x_val, x_test)]
    probes = {
        "raw pixels": probe(x_fit, fit.labels, x_val, validation.labels, x_test, test.labels, params.probe),
        f"PCA, {k} components": probe(pca[0], fit.labels, pca[1], validation.labels, pca[2], test.labels,
                                      params.probe),
    }
    random_encoders = {}
    for arch in ARCHITECTURES:
        print(f"probing untrained {arch} encoders ...", flush=True)
        C, scores = None, {}
        for seed in params.seeds:  # C chosen on the first seed's codes, kept for the others
            codes_fit, codes_val, codes_test = random_encoder_codes(
                arch, params, seed, (fit.images, validation.images, test.images))
            if C is None:
                C, scores = choose_C_on_validation(codes_fit, fit.labels, codes_val, validation.labels, params.probe)
            random_encoders.setdefault(arch, []).append(
                {"seed": seed, **probe_accuracy(codes_fit, fit.labels, codes_test, test.labels, C,
                                                params.probe.max_iter, params.probe.max_samples),
                 "probe_validation": scores})
    write_json(out_file, {
        "dataset": manifest["dataset"],
        "data_digest": manifest["digest"],
        "pca_fvu": pca_fvu(x_test, mean, components).tolist(),  # entry k-1: FVU with k components
        "probes": probes,
        "random_encoders": random_encoders,
        "published": PUBLISHED_REFERENCES,
    })
    print(", ".join(f"{name} {r['probe_accuracy']:.4f}" for name, r in probes.items()), flush=True)
