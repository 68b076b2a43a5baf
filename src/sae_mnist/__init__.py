"""Sparse-autoencoder benchmark on MNIST: data, models, penalties, training, metrics, tracking, report."""
