"""Normalizations and (log-)softmax."""

from __future__ import annotations

import numpy as np

from compress.coreml.ops import op


def _standardize(x, mean, variance, epsilon):
    return (x - mean) / np.sqrt(variance + float(epsilon))


def _scale_shift(out, gamma, beta, shape):
    """`out * gamma + beta`, each (when given) reshaped to `shape` for broadcasting."""
    if gamma is not None:
        out = out * np.reshape(gamma, shape)
    if beta is not None:
        out = out + np.reshape(beta, shape)
    return out


@op()
def batch_norm(x, mean, variance, gamma=None, beta=None, epsilon=1e-5):
    shape = [1, -1] + [1] * (np.ndim(x) - 2)
    out = _standardize(x, np.reshape(mean, shape), np.reshape(variance, shape), epsilon)
    return _scale_shift(out, gamma, beta, shape)


@op()
def instance_norm(x, gamma=None, beta=None, epsilon=1e-5):
    """Per sample and channel, over the spatial axes (NC...)."""
    x = np.asarray(x, np.float32)
    axes = tuple(range(2, x.ndim))
    out = _standardize(x, x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True), epsilon)
    return _scale_shift(out, gamma, beta, [1, -1] + [1] * (x.ndim - 2))


@op()
def layer_norm(x, axes=None, gamma=None, beta=None, epsilon=1e-5):
    """Over `axes` (None: every axis); gamma and beta have the shape of those axes."""
    x = np.asarray(x, np.float32)
    axes = tuple(range(x.ndim)) if axes is None else tuple(int(a) % x.ndim for a in axes)
    out = _standardize(x, x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True), epsilon)
    return _scale_shift(out, gamma, beta, [x.shape[i] if i in axes else 1 for i in range(x.ndim)])


@op()
def l2_norm(x, axes=None, epsilon=1e-6):
    x = np.asarray(x, np.float32)
    axes = tuple(range(1, x.ndim)) if axes is None else tuple(int(a) for a in axes)
    return x / np.maximum(np.sqrt(np.sum(np.square(x), axis=axes, keepdims=True)), float(epsilon))


@op()
def softmax(x, axis=-1):
    z = np.asarray(x, np.float32)
    z = z - z.max(axis=int(axis), keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=int(axis), keepdims=True)


@op()
def log_softmax(x, axis=-1):
    z = np.asarray(x, np.float32)
    z = z - z.max(axis=int(axis), keepdims=True)
    return z - np.log(np.exp(z).sum(axis=int(axis), keepdims=True))
